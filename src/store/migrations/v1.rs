//! Schema version 1: the foundation tables (users, roles, sessions, tokens, audit, settings).

use super::super::*;

pub(super) fn up(tx: &mut WriteTx) -> Result<(), StoreError> {
    for t in ALL_U64_TABLES {
        tx.create_table_u64(t)?;
    }
    for t in ALL_STR_TABLES {
        tx.create_table_str(t)?;
    }
    Ok(())
}
