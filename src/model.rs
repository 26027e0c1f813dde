//! Plain domain types shared by every layer: permissions, built-in roles, users, tokens,
//! sessions and audit records. No I/O and no framework types live here.

use serde::{Deserialize, Serialize};

/// One permission: `area:verb`. The list is closed so that a typo in a role definition is an
/// error, and so the OpenAPI document and the UI can show every permission with its meaning.
pub const PERMISSIONS: &[(&str, &str)] = &[
    ("users:read", "See users, roles and permissions"),
    (
        "users:write",
        "Create, edit, disable and delete users; reset passwords",
    ),
    ("roles:write", "Create, edit and delete custom roles"),
    ("tokens:admin", "See and revoke every user's API tokens"),
    (
        "audit:read",
        "Read, search, export and verify the audit log",
    ),
    ("settings:write", "Change platform settings"),
    ("hosts:read", "See hosts, inventory and host groups"),
    ("hosts:write", "Add, edit, delete hosts; maintenance mode"),
    (
        "hosts:upgrade",
        "Upgrade the agents of hosts (fleet upgrade)",
    ),
    ("exec:run", "Run commands (argv) on hosts"),
    ("exec:shell", "Run shell command lines on hosts"),
    (
        "files:transfer",
        "Upload files to and download files from hosts",
    ),
    ("terminal:open", "Open an interactive web terminal on hosts"),
    ("metrics:read", "Query metrics and see charts"),
    ("metrics:write", "Import (backfill) metric samples"),
    ("alerts:read", "See alerts and alert rules"),
    (
        "alerts:write",
        "Edit alert rules, silences and notification channels",
    ),
    ("healing:write", "Edit self-healing policies"),
    ("apps:read", "See the app store and deployed services"),
    (
        "apps:deploy",
        "Publish packages, deploy, upgrade and remove services",
    ),
    ("inspect:read", "See inspection reports"),
    ("inspect:run", "Run and schedule inspections"),
    ("backup:read", "See backups"),
    ("backup:run", "Run, schedule and restore backups"),
    ("tools:read", "See the tools catalogue and runs"),
    ("tools:run", "Run tools on hosts"),
    ("scripts:run", "Run Rhai scripts in the console"),
    ("kb:read", "Read the knowledge base"),
    ("kb:write", "Edit the knowledge base"),
    ("assistant:use", "Ask the assistant"),
    ("bigscreen:read", "Open the big-screen view"),
];

/// True when `name` is one of [`PERMISSIONS`].
pub fn is_permission(name: &str) -> bool {
    PERMISSIONS.iter().any(|(p, _)| *p == name)
}

pub const ROLE_ADMIN: &str = "admin";
pub const ROLE_OPERATOR: &str = "operator";
pub const ROLE_VIEWER: &str = "viewer";

/// Permissions an operator lacks: administration of people, settings and the audit trail.
const OPERATOR_EXCLUDES: &[&str] = &[
    "users:write",
    "roles:write",
    "tokens:admin",
    "settings:write",
    "audit:read",
];

/// The three built-in roles. They are computed, never stored, so that a new permission added
/// in a later release reaches them without a migration.
pub fn builtin_roles() -> Vec<Role> {
    let all = || PERMISSIONS.iter().map(|(p, _)| p.to_string());
    vec![
        Role {
            name: ROLE_ADMIN.into(),
            description: "Everything, including users, roles, settings and the audit log".into(),
            permissions: all().collect(),
            host_groups: vec![],
            builtin: true,
        },
        Role {
            name: ROLE_OPERATOR.into(),
            description: "Day-to-day operations on hosts and services; no user administration"
                .into(),
            permissions: all()
                .filter(|p| !OPERATOR_EXCLUDES.contains(&p.as_str()))
                .collect(),
            host_groups: vec![],
            builtin: true,
        },
        Role {
            name: ROLE_VIEWER.into(),
            description: "Read-only access".into(),
            // The audit trail names people and sources: it is not for every reader.
            permissions: all()
                .filter(|p| p.ends_with(":read") && p != "audit:read")
                .collect(),
            host_groups: vec![],
            builtin: true,
        },
    ]
}

/// A named set of permissions, optionally limited to host groups (empty = every host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub permissions: Vec<String>,
    #[serde(default)]
    pub host_groups: Vec<String>,
    #[serde(default)]
    pub builtin: bool,
}

/// UI language of a user.
pub const LANGUAGES: &[&str] = &["en", "zh-CN"];

/// A stored user account. `password_hash` is an argon2id PHC string; `totp_secret` is only
/// set once TOTP has been confirmed, `totp_pending` while it is being set up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: u64,
    pub username: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub email: String,
    pub roles: Vec<String>,
    #[serde(default)]
    pub disabled: bool,
    pub password_hash: String,
    #[serde(default)]
    pub must_change_password: bool,
    #[serde(default)]
    pub totp_secret: Option<String>,
    #[serde(default)]
    pub totp_pending: Option<String>,
    #[serde(default = "default_language")]
    pub language: String,
    pub created_at: i64,
    #[serde(default)]
    pub last_login_at: Option<i64>,
}

fn default_language() -> String {
    "en".into()
}

/// A browser session. Only the SHA-256 of the cookie value is stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub user_id: u64,
    pub csrf_token: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub user_agent: String,
}

/// An API token. Only the SHA-256 of the secret is stored; `prefix` identifies it in lists.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub user_id: u64,
    pub prefix: String,
    pub secret_hash: String,
    pub created_at: i64,
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub last_used_at: Option<i64>,
}

/// Outcome of an audited action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditResult {
    Success,
    Failure,
}

/// One audit record, as chained: `hash` covers every other field and `prev_hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub time: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub source: String,
    pub result: AuditResult,
    /// HTTP status for API actions, the exit code for CLI actions, 0 otherwise.
    pub status: i64,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_roles_are_nested_and_valid() {
        let roles = builtin_roles();
        let get = |n: &str| roles.iter().find(|r| r.name == n).unwrap();
        let admin = get(ROLE_ADMIN);
        let op = get(ROLE_OPERATOR);
        let viewer = get(ROLE_VIEWER);
        assert_eq!(admin.permissions.len(), PERMISSIONS.len());
        assert!(op.permissions.iter().all(|p| admin.permissions.contains(p)));
        assert!(!op.permissions.contains(&"users:write".to_string()));
        assert!(op.permissions.contains(&"exec:run".to_string()));
        assert!(viewer.permissions.iter().all(|p| p.ends_with(":read")));
        assert!(viewer.permissions.contains(&"hosts:read".to_string()));
        assert!(
            roles
                .iter()
                .flat_map(|r| &r.permissions)
                .all(|p| is_permission(p))
        );
    }
}
