//! Route handlers, one file per area. Handlers translate between HTTP and the services;
//! authentication, permissions and auditing already happened in `api::authz`.

pub(super) mod agent;
pub(super) mod audit;
pub(super) mod auth;
pub(super) mod files;
pub(super) mod fleet;
pub(super) mod hosts;
pub(super) mod metrics_import;
pub(super) mod prom;
pub(super) mod scrape;
pub(super) mod system;
pub(super) mod terminal;
pub(super) mod tokens;
pub(super) mod ui;
pub(super) mod users;

use serde_json::{Value, json};

use super::error::ApiError;
use crate::auth::{Principal, Via};
use crate::model::{ApiToken, User};

/// Runs blocking service code (argon2, redb commits) off the async workers.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::error::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => Err(ApiError::internal(e)),
    }
}

pub(super) fn time(secs: i64) -> Value {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
        .unwrap_or(Value::Null)
}

pub(super) fn user_dto(u: &User) -> Value {
    json!({
        "id": u.id,
        "username": u.username,
        "display_name": u.display_name,
        "email": u.email,
        "roles": u.roles,
        "disabled": u.disabled,
        "totp_enabled": u.totp_secret.is_some(),
        "must_change_password": u.must_change_password,
        "language": u.language,
        "created_at": time(u.created_at),
        "last_login_at": u.last_login_at.map(time),
    })
}

pub(super) fn me_dto(p: &Principal) -> Value {
    let mut v = user_dto(&p.user);
    v["permissions"] = json!(p.grants.permissions());
    v["csrf_token"] = match &p.via {
        Via::Session { csrf_token, .. } => json!(csrf_token),
        Via::Token { .. } => Value::Null,
    };
    v
}

pub(super) fn token_dto(t: &ApiToken, username: &str) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "prefix": t.prefix,
        "user": username,
        "created_at": time(t.created_at),
        "expires_at": t.expires_at.map(time),
        "last_used_at": t.last_used_at.map(time),
    })
}

/// Parses a numeric path id.
pub(super) fn parse_id(raw: &str) -> Result<u64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::new("not_found", format!("no object with id {raw:?}")))
}
