//! Schema version 2: hosts and agents (hosts, enrollment tokens, agent credentials, jobs,
//! terminal sessions, SSH host keys).

use super::super::*;

pub(super) fn up(tx: &mut WriteTx) -> Result<(), StoreError> {
    for t in [&HOSTS, &JOBS, &TERMINALS] {
        tx.create_table_u64(t)?;
    }
    for t in [
        &ENROLL_TOKENS,
        &ENROLL_SECRETS,
        &AGENT_CREDS,
        &SSH_KNOWN_HOSTS,
    ] {
        tx.create_table_str(t)?;
    }
    Ok(())
}
