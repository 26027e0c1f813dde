//! The route table: one list that builds the router, drives the authorization middleware
//! and generates the OpenAPI document, so that none of the three can drift from the others.

use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post, put};

use super::AppState;
use super::handlers::{
    audit, auth, files, fleet, hosts, metrics_import, prom, scrape, system, terminal, tokens, users,
};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No authentication (login only).
    Public,
    /// Any signed-in user or token holder.
    SignedIn,
    /// Holders of this permission.
    Perm(&'static str),
}

/// One route of `/api/v1`.
#[derive(Debug, Clone)]
pub struct RouteDef {
    pub method: Method,
    /// The axum path, `{name}` for parameters.
    pub path: &'static str,
    /// Stable action name: the audit log's `action` and the OpenAPI `operationId`.
    pub action: &'static str,
    pub access: Access,
    pub summary: &'static str,
    /// Reachable by a user who must change their password first.
    pub while_password_change: bool,
    /// The handler audits itself (login: failures must be recorded with the attempted name).
    pub audits_itself: bool,
    /// Field names of the JSON body, for the OpenAPI document.
    pub body: &'static [&'static str],
    /// A POST that changes nothing (Prometheus queries): no CSRF token, no audit record.
    pub read_only: bool,
}

impl RouteDef {
    pub fn is_mutating(&self) -> bool {
        !self.read_only && !matches!(self.method, Method::GET | Method::HEAD | Method::OPTIONS)
    }
}

struct R {
    def: RouteDef,
    handler: MethodRouter<AppState>,
}

fn r(
    method: Method,
    path: &'static str,
    action: &'static str,
    access: Access,
    summary: &'static str,
    handler: MethodRouter<AppState>,
) -> R {
    R {
        def: RouteDef {
            method,
            path,
            action,
            access,
            summary,
            while_password_change: false,
            audits_itself: false,
            body: &[],
            read_only: false,
        },
        handler,
    }
}

impl R {
    fn body(mut self, fields: &'static [&'static str]) -> Self {
        self.def.body = fields;
        self
    }
    fn during_password_change(mut self) -> Self {
        self.def.while_password_change = true;
        self
    }
    fn read_only(mut self) -> Self {
        self.def.read_only = true;
        self
    }
    fn self_audited(mut self) -> Self {
        self.def.audits_itself = true;
        self
    }
}

use Access::*;

/// Every `/api/v1` route with its handler.
pub(super) fn table() -> Vec<(RouteDef, MethodRouter<AppState>)> {
    let v = |p: &'static str| p;
    let routes = vec![
        r(
            Method::POST,
            v("/api/v1/auth/login"),
            "auth.login",
            Public,
            "Sign in; sets the session cookie and returns the CSRF token",
            post(auth::login),
        )
        .body(&["username", "password", "totp"])
        .self_audited()
        .during_password_change(),
        r(
            Method::POST,
            "/api/v1/auth/logout",
            "auth.logout",
            SignedIn,
            "End this session",
            post(auth::logout),
        )
        .during_password_change(),
        r(
            Method::GET,
            "/api/v1/auth/me",
            "auth.me",
            SignedIn,
            "The signed-in user with permissions and CSRF token",
            get(auth::me),
        )
        .during_password_change(),
        r(
            Method::POST,
            "/api/v1/auth/password",
            "auth.password",
            SignedIn,
            "Change one's own password",
            post(auth::change_password),
        )
        .body(&["current_password", "new_password"])
        .during_password_change(),
        r(
            Method::PUT,
            "/api/v1/auth/profile",
            "auth.profile",
            SignedIn,
            "Update one's display name, email and language",
            put(auth::update_profile),
        )
        .body(&["display_name", "email", "language"]),
        r(
            Method::GET,
            "/api/v1/auth/sessions",
            "auth.sessions",
            SignedIn,
            "One's own sessions",
            get(auth::sessions),
        ),
        r(
            Method::POST,
            "/api/v1/auth/sessions/revoke-all",
            "auth.sessions.revoke_all",
            SignedIn,
            "End every session of the signed-in user",
            post(auth::revoke_all),
        ),
        r(
            Method::POST,
            "/api/v1/auth/totp/setup",
            "auth.totp.setup",
            SignedIn,
            "Start TOTP setup: a new secret and otpauth URL",
            post(auth::totp_setup),
        ),
        r(
            Method::POST,
            "/api/v1/auth/totp/enable",
            "auth.totp.enable",
            SignedIn,
            "Confirm TOTP with a current code",
            post(auth::totp_enable),
        )
        .body(&["code"]),
        r(
            Method::POST,
            "/api/v1/auth/totp/disable",
            "auth.totp.disable",
            SignedIn,
            "Turn TOTP off (needs the password)",
            post(auth::totp_disable),
        )
        .body(&["password"]),
        r(
            Method::GET,
            "/api/v1/system/info",
            "system.info",
            SignedIn,
            "Version, uptime and which modules are available",
            get(system::info),
        ),
        r(
            Method::GET,
            "/api/v1/users",
            "users.list",
            Perm("users:read"),
            "List users (q, page, page_size)",
            get(users::list),
        ),
        r(
            Method::POST,
            "/api/v1/users",
            "users.create",
            Perm("users:write"),
            "Create a user",
            post(users::create),
        )
        .body(&["username", "password", "display_name", "email", "roles"]),
        r(
            Method::GET,
            "/api/v1/users/{id}",
            "users.get",
            Perm("users:read"),
            "One user",
            get(users::get_one),
        ),
        r(
            Method::PUT,
            "/api/v1/users/{id}",
            "users.update",
            Perm("users:write"),
            "Edit, disable or enable a user",
            put(users::update),
        )
        .body(&["display_name", "email", "roles", "disabled"]),
        r(
            Method::DELETE,
            "/api/v1/users/{id}",
            "users.delete",
            Perm("users:write"),
            "Delete a user, their sessions and tokens",
            delete(users::delete_one),
        ),
        r(
            Method::POST,
            "/api/v1/users/{id}/password",
            "users.reset_password",
            Perm("users:write"),
            "Set a new password the user must change at next login",
            post(users::reset_password),
        )
        .body(&["new_password"]),
        r(
            Method::GET,
            "/api/v1/roles",
            "roles.list",
            Perm("users:read"),
            "Built-in and custom roles",
            get(users::list_roles),
        ),
        r(
            Method::POST,
            "/api/v1/roles",
            "roles.create",
            Perm("roles:write"),
            "Create a custom role",
            post(users::create_role),
        )
        .body(&["name", "description", "permissions", "host_groups"]),
        r(
            Method::PUT,
            "/api/v1/roles/{name}",
            "roles.update",
            Perm("roles:write"),
            "Edit a custom role",
            put(users::update_role),
        )
        .body(&["description", "permissions", "host_groups"]),
        r(
            Method::DELETE,
            "/api/v1/roles/{name}",
            "roles.delete",
            Perm("roles:write"),
            "Delete a custom role nobody holds",
            delete(users::delete_role),
        ),
        r(
            Method::GET,
            "/api/v1/permissions",
            "permissions.list",
            Perm("users:read"),
            "Every permission with its meaning",
            get(users::list_permissions),
        ),
        r(
            Method::GET,
            "/api/v1/tokens",
            "tokens.list",
            SignedIn,
            "One's own API tokens (all=true: everyone's, needs tokens:admin)",
            get(tokens::list),
        ),
        r(
            Method::POST,
            "/api/v1/tokens",
            "tokens.create",
            SignedIn,
            "Create an API token; the secret is shown once",
            post(tokens::create),
        )
        .body(&["name", "expires_in_days"]),
        r(
            Method::DELETE,
            "/api/v1/tokens/{id}",
            "tokens.revoke",
            SignedIn,
            "Revoke an API token (own, or any with tokens:admin)",
            delete(tokens::revoke),
        ),
        r(
            Method::GET,
            "/api/v1/audit",
            "audit.list",
            Perm("audit:read"),
            "Search the audit log, newest first",
            get(audit::list),
        ),
        r(
            Method::GET,
            "/api/v1/audit/export",
            "audit.export",
            Perm("audit:read"),
            "Export matching records as CSV or JSON",
            get(audit::export),
        ),
        r(
            Method::GET,
            "/api/v1/audit/verify",
            "audit.verify",
            Perm("audit:read"),
            "Verify the audit hash chain",
            get(audit::verify),
        ),
        r(
            Method::GET,
            "/api/v1/hosts",
            "hosts.list",
            Perm("hosts:read"),
            "List hosts (q, status, group, label=k=v, page, page_size)",
            get(hosts::list),
        ),
        r(
            Method::POST,
            "/api/v1/hosts/enroll-tokens",
            "hosts.enroll_tokens.create",
            Perm("hosts:write"),
            "Create a one-time enrollment token and the one-line install command",
            post(hosts::create_enroll_token),
        )
        .body(&["ttl_minutes", "labels", "groups"]),
        r(
            Method::GET,
            "/api/v1/hosts/enroll-tokens",
            "hosts.enroll_tokens.list",
            Perm("hosts:write"),
            "Enrollment tokens (no secrets)",
            get(hosts::list_enroll_tokens),
        ),
        r(
            Method::DELETE,
            "/api/v1/hosts/enroll-tokens/{id}",
            "hosts.enroll_tokens.revoke",
            Perm("hosts:write"),
            "Revoke an enrollment token",
            delete(hosts::revoke_enroll_token),
        ),
        r(
            Method::GET,
            "/api/v1/hosts/{id}",
            "hosts.get",
            Perm("hosts:read"),
            "One host with inventory and status",
            get(hosts::get_one),
        ),
        r(
            Method::GET,
            "/api/v1/hosts/{id}/processes",
            "hosts.processes",
            Perm("hosts:read"),
            "The host's top processes by cpu or memory (?sort=cpu|memory&limit=20), read by its agent now",
            get(hosts::processes),
        ),
        r(
            Method::PUT,
            "/api/v1/hosts/{id}",
            "hosts.update",
            Perm("hosts:write"),
            "Set a host's labels and groups",
            put(hosts::update),
        )
        .body(&["labels", "groups"]),
        r(
            Method::DELETE,
            "/api/v1/hosts/{id}",
            "hosts.delete",
            Perm("hosts:write"),
            "Delete a host and revoke its agent",
            delete(hosts::delete_one),
        ),
        r(
            Method::PUT,
            "/api/v1/hosts/{id}/maintenance",
            "hosts.maintenance.on",
            Perm("hosts:write"),
            "Put a host in maintenance",
            put(hosts::maintenance_on),
        )
        .body(&["reason", "until"]),
        r(
            Method::DELETE,
            "/api/v1/hosts/{id}/maintenance",
            "hosts.maintenance.off",
            Perm("hosts:write"),
            "End a host's maintenance",
            delete(hosts::maintenance_off),
        ),
        r(
            Method::POST,
            "/api/v1/hosts/upgrade",
            "hosts.upgrade",
            Perm("hosts:upgrade"),
            "Upgrade agents to the server's agent binary: all, a group or a list; canary first",
            post(fleet::start),
        )
        .body(&["all", "group", "hosts", "canary", "timeout_secs"]),
        r(
            Method::GET,
            "/api/v1/hosts/upgrades",
            "hosts.upgrades.list",
            Perm("hosts:upgrade"),
            "Agent upgrade runs, newest first",
            get(fleet::list),
        ),
        r(
            Method::GET,
            "/api/v1/hosts/upgrades/{id}",
            "hosts.upgrades.get",
            Perm("hosts:upgrade"),
            "One agent upgrade run with the state of every host",
            get(fleet::get_one),
        ),
        r(
            Method::GET,
            "/api/v1/hosts/agent-binary",
            "hosts.agent_binary",
            Perm("hosts:read"),
            "Version, SHA-256 and size of the agent binary this server hands out",
            get(fleet::agent_binary),
        ),
        r(
            Method::GET,
            "/api/v1/maintenance",
            "maintenance.get",
            Perm("hosts:read"),
            "Global maintenance state",
            get(hosts::global_maintenance),
        ),
        r(
            Method::PUT,
            "/api/v1/maintenance",
            "maintenance.set",
            Perm("hosts:write"),
            "Turn global maintenance on or off",
            put(hosts::set_global_maintenance),
        )
        .body(&["enabled", "reason", "until"]),
        r(
            Method::GET,
            "/api/v1/host-groups",
            "hosts.groups",
            Perm("hosts:read"),
            "Host groups with their host counts",
            get(hosts::groups),
        ),
        r(
            Method::POST,
            "/api/v1/exec",
            "exec.run",
            Perm("exec:run"),
            "Run argv (or, with exec:shell, a shell command) on hosts",
            post(hosts::exec),
        )
        .body(&["argv", "command", "targets", "timeout_secs"]),
        r(
            Method::GET,
            "/api/v1/exec",
            "exec.list",
            Perm("exec:run"),
            "Remote execution history, newest first",
            get(hosts::jobs),
        ),
        r(
            Method::GET,
            "/api/v1/exec/{id}",
            "exec.get",
            Perm("exec:run"),
            "A job with live per-host output",
            get(hosts::job),
        ),
        r(
            Method::POST,
            "/api/v1/exec/{id}/cancel",
            "exec.cancel",
            Perm("exec:run"),
            "Cancel a running job",
            post(hosts::cancel),
        ),
        r(
            Method::POST,
            "/api/v1/hosts/{id}/terminal",
            "terminals.open",
            Perm("terminal:open"),
            "Open a recorded web terminal on a host",
            post(terminal::open),
        )
        .body(&["cols", "rows"]),
        r(
            Method::GET,
            "/api/v1/terminals/{id}/ws",
            "terminals.attach",
            Perm("terminal:open"),
            "The terminal's WebSocket (attach or reattach)",
            get(terminal::socket),
        ),
        r(
            Method::DELETE,
            "/api/v1/terminals/{id}",
            "terminals.close",
            Perm("terminal:open"),
            "Close one's own terminal",
            delete(terminal::close),
        ),
        r(
            Method::GET,
            "/api/v1/terminals",
            "terminals.list",
            Perm("audit:read"),
            "Terminal sessions, newest first",
            get(terminal::list),
        ),
        r(
            Method::GET,
            "/api/v1/terminals/{id}/recording",
            "terminals.recording",
            Perm("audit:read"),
            "A terminal session's asciicast v2 recording",
            get(terminal::recording),
        ),
        r(
            Method::PUT,
            "/api/v1/hosts/{id}/files",
            "files.upload",
            Perm("files:transfer"),
            "Upload a file to a host (raw body; ?path=&mode=0644&owner=user:group; optional X-Content-SHA256)",
            put(files::upload),
        ),
        r(
            Method::POST,
            "/api/v1/hosts/{id}/files/download",
            "files.download",
            Perm("files:transfer"),
            "Download a file from a host",
            post(files::download),
        )
        .body(&["path"]),
        r(Method::POST, "/api/v1/hosts/ssh-push", "hosts.ssh_push", Perm("hosts:write"), "Install and enroll the agent over SSH (password or key; host key trusted on first use)", post(hosts::push))
            .body(&["address", "port", "user", "password", "private_key", "passphrase", "labels", "groups", "prefix", "data_dir", "expected_host_key"]),
        r(Method::GET, "/api/v1/hosts/ssh-push", "hosts.ssh_push.list", Perm("hosts:write"), "Recent SSH pushes with their steps", get(hosts::push_list)),
        r(Method::GET, "/api/v1/hosts/ssh-push/{id}", "hosts.ssh_push.get", Perm("hosts:write"), "One SSH push with its steps", get(hosts::push_get)),
        r(Method::GET, "/api/v1/ssh/known-hosts", "ssh.known_hosts", Perm("hosts:read"), "Trusted SSH host keys", get(hosts::known_hosts)),
        r(Method::DELETE, "/api/v1/ssh/known-hosts/{target}", "ssh.known_hosts.forget", Perm("hosts:write"), "Forget a host key (after a reinstall)", delete(hosts::forget_known_host)),
        r(Method::POST, "/api/v1/hosts/import", "hosts.import", Perm("hosts:write"), "Validate a CSV of hosts and, when every row is valid and not dry_run, push them all", post(hosts::import))
            .body(&["csv", "private_key", "passphrase", "dry_run"]),
        r(Method::GET, "/prometheus/api/v1/query", "prom.query", Perm("metrics:read"), "PromQL instant query (Prometheus HTTP API)", get(prom::query)),
        r(Method::POST, "/prometheus/api/v1/query", "prom.query.post", Perm("metrics:read"), "PromQL instant query, form-encoded body", post(prom::query)).read_only(),
        r(Method::GET, "/prometheus/api/v1/query_range", "prom.query_range", Perm("metrics:read"), "PromQL range query (Prometheus HTTP API)", get(prom::query_range)),
        r(Method::POST, "/prometheus/api/v1/query_range", "prom.query_range.post", Perm("metrics:read"), "PromQL range query, form-encoded body", post(prom::query_range)).read_only(),
        r(Method::GET, "/prometheus/api/v1/series", "prom.series", Perm("metrics:read"), "Series matching match[] selectors", get(prom::series)),
        r(Method::POST, "/prometheus/api/v1/series", "prom.series.post", Perm("metrics:read"), "Series matching match[] selectors, form-encoded body", post(prom::series)).read_only(),
        r(Method::GET, "/prometheus/api/v1/labels", "prom.labels", Perm("metrics:read"), "Label names", get(prom::labels)),
        r(Method::GET, "/prometheus/api/v1/label/{name}/values", "prom.label_values", Perm("metrics:read"), "Values of one label", get(prom::label_values)),
        r(Method::GET, "/prometheus/api/v1/metadata", "prom.metadata", Perm("metrics:read"), "Metric metadata", get(prom::metadata)),
        r(Method::GET, "/prometheus/api/v1/status/buildinfo", "prom.buildinfo", Perm("metrics:read"), "Build information", get(prom::buildinfo)),
        r(Method::GET, "/prometheus/api/v1/status/runtimeinfo", "prom.runtimeinfo", Perm("metrics:read"), "Runtime information (Prometheus' fields)", get(prom::runtimeinfo)),
        r(Method::GET, "/prometheus/api/v1/query_exemplars", "prom.query_exemplars", Perm("metrics:read"), "Exemplars (none are stored: always empty)", get(prom::query_exemplars)),
        r(Method::POST, "/prometheus/api/v1/query_exemplars", "prom.query_exemplars.post", Perm("metrics:read"), "Exemplars, form-encoded body (always empty)", post(prom::query_exemplars)).read_only(),
        r(Method::POST, "/api/v1/metrics/import", "metrics.import", Perm("metrics:write"), "Backfill exposition text with timestamps (?format=openmetrics|prometheus; raw body)", post(metrics_import::import)),
        r(Method::GET, "/api/v1/remote-write", "remote_write.list", Perm("metrics:read"), "Remote-write endpoints from omp.toml with queued, sent and dropped samples and the last error", get(scrape::remote_write)),
        r(Method::GET, "/api/v1/scrape-targets", "scrape.list", Perm("metrics:read"), "Scrape targets (file and API) with their health and last error", get(scrape::list)),
        r(Method::POST, "/api/v1/scrape-targets", "scrape.create", Perm("metrics:write"), "Add a scrape target", post(scrape::create))
            .body(&["job", "target", "scheme", "metrics_path", "interval_secs", "timeout_secs", "labels", "sample_limit", "basic_auth", "bearer_token"]),
        r(Method::PUT, "/api/v1/scrape-targets/{id}", "scrape.update", Perm("metrics:write"), "Change a scrape target added through the API (secrets kept unless given or clear_auth)", put(scrape::update))
            .body(&["job", "target", "scheme", "metrics_path", "interval_secs", "timeout_secs", "labels", "sample_limit", "basic_auth", "bearer_token", "clear_auth", "via_host"]),
        r(Method::DELETE, "/api/v1/scrape-targets/{id}", "scrape.delete", Perm("metrics:write"), "Remove a scrape target added through the API", delete(scrape::remove)),
        r(Method::GET, "/federate", "prom.federate", Perm("metrics:read"), "Newest samples of match[] selectors in the Prometheus text format (for a Prometheus to scrape)", get(prom::federate)),
        r(Method::GET, "/metrics", "omp.metrics", Perm("metrics:read"), "OMP's own metrics in the Prometheus text format", get(prom::self_metrics)),
    ];
    routes.into_iter().map(|r| (r.def, r.handler)).collect()
}

/// The route definitions alone (for the OpenAPI document and tests).
pub fn definitions() -> Vec<RouteDef> {
    table().into_iter().map(|(d, _)| d).collect()
}
