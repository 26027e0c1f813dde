//! Schema version 1: the foundation tables (users, roles, sessions, tokens, audit, settings).

use super::super::*;

pub(super) fn up(tx: &mut WriteTx) -> Result<(), StoreError> {
    for t in [&USERS, &AUDIT] {
        tx.create_table_u64(t)?;
    }
    for t in [
        &META,
        &USERNAMES,
        &ROLES,
        &SESSIONS,
        &TOKENS,
        &TOKEN_HASHES,
        &SETTINGS,
    ] {
        tx.create_table_str(t)?;
    }
    Ok(())
}
