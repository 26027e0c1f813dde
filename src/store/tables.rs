//! Every table of the store, declared in one place so that export, import and migrations
//! see them all. Adding a table: declare it here, add it to `ALL_*`, create it in a migration.

use super::{StrTable, U64Table};

/// Store metadata: `schema_version`, counters (`seq:NAME`), the audit chain head.
pub const META: StrTable = StrTable::new("meta");
/// Users by id.
pub const USERS: U64Table = U64Table::new("users");
/// Username → user id (unique index).
pub const USERNAMES: StrTable = StrTable::new("usernames");
/// Custom roles by name (built-in roles are computed, not stored).
pub const ROLES: StrTable = StrTable::new("roles");
/// Sessions by SHA-256 of the cookie value.
pub const SESSIONS: StrTable = StrTable::new("sessions");
/// API tokens by id.
pub const TOKENS: StrTable = StrTable::new("tokens");
/// SHA-256 of a token secret → token id.
pub const TOKEN_HASHES: StrTable = StrTable::new("token_hashes");
/// The hash-chained audit log by sequence number.
pub const AUDIT: U64Table = U64Table::new("audit");
/// Platform settings by key.
pub const SETTINGS: StrTable = StrTable::new("settings");

/// Hosts by id.
pub const HOSTS: U64Table = U64Table::new("hosts");
/// Enrollment tokens by id.
pub const ENROLL_TOKENS: StrTable = StrTable::new("enroll_tokens");
/// SHA-256 of an enrollment secret → token id.
pub const ENROLL_SECRETS: StrTable = StrTable::new("enroll_secrets");
/// SHA-256 of an agent credential → host id.
pub const AGENT_CREDS: StrTable = StrTable::new("agent_creds");
/// Remote execution jobs by id.
pub const JOBS: U64Table = U64Table::new("jobs");
/// Web terminal sessions (their recordings are files in `DATA_DIR/recordings/`).
pub const TERMINALS: U64Table = U64Table::new("terminals");
/// Scrape targets added through the API, by id.
pub const SCRAPE_TARGETS: StrTable = StrTable::new("scrape_targets");
/// Trusted SSH host keys by `address:port`.
pub const SSH_KNOWN_HOSTS: StrTable = StrTable::new("ssh_known_hosts");

pub(super) const ALL_U64_TABLES: &[&U64Table] = &[&USERS, &AUDIT, &HOSTS, &JOBS, &TERMINALS];
pub(super) const ALL_STR_TABLES: &[&StrTable] = &[
    &META,
    &USERNAMES,
    &ROLES,
    &SESSIONS,
    &TOKENS,
    &TOKEN_HASHES,
    &SETTINGS,
    &ENROLL_TOKENS,
    &ENROLL_SECRETS,
    &AGENT_CREDS,
    &SSH_KNOWN_HOSTS,
    &SCRAPE_TARGETS,
];
