//! `/api/v1/hosts`, `/api/v1/maintenance`, `/api/v1/host-groups`, `/api/v1/exec`.

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{blocking, parse_id, time};
use crate::api::error::ApiError;
use crate::api::extract::{JsonBody, Page, QueryArgs};
use crate::api::{AppState, no_content, noted};
use crate::auth::Principal;
use crate::hosts::{ExecInput, HostFilter, HostPatch, HostView, Job, Maintenance};

pub(crate) fn host_dto(v: &HostView) -> Value {
    let h = &v.record;
    let i = &h.inventory;
    json!({
        "id": h.id,
        "hostname": i.hostname,
        "status": if v.online { "online" } else { "offline" },
        "last_seen_at": h.last_seen_at.map(time),
        "enrolled_at": time(h.enrolled_at),
        "agent_version": h.agent_version,
        "os": i.os,
        "kernel": i.kernel,
        "arch": i.arch,
        "cpus": i.cpus,
        "memory_bytes": i.memory_bytes,
        "disks": i.disks,
        "ips": i.ips,
        "uptime_secs": i.uptime_secs,
        "machine_id": i.machine_id,
        "labels": h.labels,
        "groups": h.groups,
        "maintenance": h.maintenance.as_ref().map(maintenance_dto),
    })
}

fn maintenance_dto(m: &Maintenance) -> Value {
    json!({ "enabled": m.enabled, "by": m.by, "since": time(m.since), "until": m.until.map(time), "reason": m.reason })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ListArgs {
    q: Option<String>,
    status: Option<String>,
    group: Option<String>,
    label: Option<String>,
    page: Option<usize>,
    page_size: Option<usize>,
}

pub(crate) async fn list(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    QueryArgs(a): QueryArgs<ListArgs>,
) -> Result<Response, ApiError> {
    let page = Page::of(a.page, a.page_size);
    let (offset, limit) = page.window()?;
    let online = match a.status.as_deref() {
        None | Some("") => None,
        Some("online") => Some(true),
        Some("offline") => Some(false),
        Some(o) => {
            return Err(ApiError::new(
                "bad_request",
                format!("status must be online or offline, not {o:?}"),
            ));
        }
    };
    let label = match a.label.as_deref().filter(|l| !l.is_empty()) {
        None => None,
        Some(l) => {
            let (k, v) = l
                .split_once('=')
                .ok_or_else(|| ApiError::new("bad_request", "label must be key=value"))?;
            Some((k.to_string(), v.to_string()))
        }
    };
    let f = HostFilter {
        q: a.q,
        online,
        group: a.group.filter(|g| !g.is_empty()),
        label,
    };
    let hosts = st.hosts.clone();
    let all = blocking(move || hosts.list(&p.grants, &f)).await?;
    let total = all.len() as u64;
    let items: Vec<Value> = all.iter().skip(offset).take(limit).map(host_dto).collect();
    Ok(axum::Json(page.answer(items, total)).into_response())
}

pub(crate) async fn get_one(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let hosts = st.hosts.clone();
    let v = blocking(move || hosts.get(&p.grants, id, "hosts:read")).await?;
    Ok(axum::Json(host_dto(&v)).into_response())
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ProcessArgs {
    sort: String,
    limit: u32,
}

impl Default for ProcessArgs {
    fn default() -> Self {
        ProcessArgs {
            sort: "cpu".into(),
            limit: 20,
        }
    }
}

/// The host's top processes, asked of its agent now.
pub(crate) async fn processes(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    QueryArgs(a): QueryArgs<ProcessArgs>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let list = st
        .hosts
        .processes(&p.grants, id, &a.sort, a.limit)
        .await
        .map_err(ApiError::from)?;
    Ok(axum::Json(json!({
        "collected_at": time(list.collected_at),
        "total": list.total,
        "items": list.items.iter().map(|p| {
            let mut v = json!(p);
            v["started_at"] = p.started_at.map(time).unwrap_or(Value::Null);
            v
        }).collect::<Vec<_>>(),
    }))
    .into_response())
}

pub(crate) async fn update(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<HostPatch>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let hosts = st.hosts.clone();
    let v = blocking(move || hosts.update(&p.grants, id, b)).await?;
    let detail = format!(
        "labels: {:?}; groups: {}",
        v.record.labels,
        v.record.groups.join(",")
    );
    Ok(noted(
        axum::Json(host_dto(&v)).into_response(),
        v.record.inventory.hostname.clone(),
        detail,
    ))
}

pub(crate) async fn delete_one(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let hosts = st.hosts.clone();
    let h = blocking(move || hosts.delete(&p.grants, id)).await?;
    Ok(noted(
        no_content(),
        format!("host {} ({})", h.id, h.inventory.hostname),
        "",
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MaintenanceBody {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    reason: String,
    /// RFC 3339.
    #[serde(default)]
    until: Option<String>,
}

fn parse_until(u: &Option<String>) -> Result<Option<i64>, ApiError> {
    match u.as_deref().filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.timestamp()))
            .map_err(|_| {
                ApiError::new(
                    "validation_failed",
                    "until must be RFC 3339, e.g. 2026-12-01T08:00:00Z",
                )
                .with_details(json!({"field": "until"}))
            }),
    }
}

pub(crate) async fn maintenance_on(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<MaintenanceBody>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let m = Maintenance {
        enabled: true,
        by: p.user.username.clone(),
        since: crate::hosts::now(),
        until: parse_until(&b.until)?,
        reason: b.reason.clone(),
    };
    let hosts = st.hosts.clone();
    let v = blocking(move || hosts.set_maintenance(&p.grants, id, Some(m))).await?;
    Ok(noted(
        axum::Json(host_dto(&v)).into_response(),
        v.record.inventory.hostname.clone(),
        b.reason,
    ))
}

pub(crate) async fn maintenance_off(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let hosts = st.hosts.clone();
    let v = blocking(move || hosts.set_maintenance(&p.grants, id, None)).await?;
    Ok(noted(
        axum::Json(host_dto(&v)).into_response(),
        v.record.inventory.hostname.clone(),
        "maintenance ended",
    ))
}

pub(crate) async fn global_maintenance(State(st): State<AppState>) -> Result<Response, ApiError> {
    let hosts = st.hosts.clone();
    let m = blocking(move || hosts.global_maintenance()).await?;
    Ok(axum::Json(
        m.as_ref()
            .map(maintenance_dto)
            .unwrap_or(json!({"enabled": false})),
    )
    .into_response())
}

pub(crate) async fn set_global_maintenance(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    JsonBody(b): JsonBody<MaintenanceBody>,
) -> Result<Response, ApiError> {
    let m = match b.enabled {
        Some(true) => Some(Maintenance {
            enabled: true,
            by: p.user.username.clone(),
            since: crate::hosts::now(),
            until: parse_until(&b.until)?,
            reason: b.reason.clone(),
        }),
        Some(false) => None,
        None => {
            return Err(ApiError::new("validation_failed", "enabled is required")
                .with_details(json!({"field": "enabled"})));
        }
    };
    let hosts = st.hosts.clone();
    let m = blocking(move || hosts.set_global_maintenance(m)).await?;
    let body = m
        .as_ref()
        .map(maintenance_dto)
        .unwrap_or(json!({"enabled": false}));
    let detail = if m.is_some() {
        format!("on: {}", b.reason)
    } else {
        "off".into()
    };
    Ok(noted(
        axum::Json(body).into_response(),
        "global maintenance",
        detail,
    ))
}

pub(crate) async fn groups(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Response, ApiError> {
    let hosts = st.hosts.clone();
    let g = blocking(move || hosts.groups(&p.grants)).await?;
    let items: Vec<Value> = g
        .into_iter()
        .map(|(name, n)| json!({"name": name, "hosts": n}))
        .collect();
    Ok(axum::Json(json!({ "items": items })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnrollBody {
    #[serde(default)]
    ttl_minutes: Option<u64>,
    /// Finer than minutes, for scripts and tests; wins over `ttl_minutes`.
    #[serde(default)]
    ttl_seconds: Option<u64>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    groups: Vec<String>,
}

/// `https://HOST:PORT` agents should dial: `server.public_url`, else the Host header.
pub(crate) fn public_url(st: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    if let Some(u) = &st.config.server.public_url {
        return Ok(u.trim_end_matches('/').to_string());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
    if !ok {
        return Err(ApiError::new(
            "bad_request",
            "cannot tell this server's address from the Host header: set server.public_url",
        ));
    }
    Ok(format!("https://{host}"))
}

/// Quotes a value for a POSIX shell command line shown to the user (single quotes).
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

pub(crate) async fn create_enroll_token(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    JsonBody(b): JsonBody<EnrollBody>,
) -> Result<Response, ApiError> {
    let url = public_url(&st, &headers)?;
    let hosts = st.hosts.clone();
    let who = p.user.username.clone();
    let ttl_secs = match (b.ttl_seconds, b.ttl_minutes) {
        (Some(s), _) => s,
        (None, Some(m)) => m.saturating_mul(60),
        (None, None) => 3600,
    };
    let (rec, secret) =
        blocking(move || hosts.create_enroll_token(&who, ttl_secs, b.labels, b.groups)).await?;
    let token = crate::proto::EnrollToken {
        pin: st.pins.cert.clone(),
        secret,
    }
    .encode();
    let command = format!(
        "curl -fsSk --pinnedpubkey {pin} {script} | sh -s -- --server {url} --enroll-token {token}",
        pin = sh_quote(&st.pins.curl),
        script = sh_quote(&format!("{url}/api/agent/v1/install.sh")),
        url = sh_quote(&url),
        token = sh_quote(&token),
    );
    let mut resp = (
        StatusCode::CREATED,
        axum::Json(json!({
            "id": rec.id,
            "token": token,
            "command": command,
            "server": url,
            "expires_at": time(rec.expires_at),
            "labels": rec.labels,
            "groups": rec.groups,
        })),
    )
        .into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(noted(
        resp,
        format!("enrollment token {}", rec.id),
        format!("expires {}", time(rec.expires_at).as_str().unwrap_or("")),
    ))
}

pub(crate) async fn list_enroll_tokens(State(st): State<AppState>) -> Result<Response, ApiError> {
    let hosts = st.hosts.clone();
    let v = blocking(move || hosts.list_enroll_tokens()).await?;
    let items: Vec<Value> = v
        .iter()
        .map(|r| {
            json!({
                "id": r.id, "created_by": r.created_by, "created_at": time(r.created_at),
                "expires_at": time(r.expires_at), "used_at": r.used_at.map(time),
                "used_by_host": r.used_by_host, "labels": r.labels, "groups": r.groups,
            })
        })
        .collect();
    Ok(axum::Json(json!({ "items": items })).into_response())
}

pub(crate) async fn revoke_enroll_token(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let hosts = st.hosts.clone();
    let r = blocking(move || hosts.revoke_enroll_token(&id)).await?;
    Ok(noted(
        no_content(),
        format!("enrollment token {}", r.id),
        "",
    ))
}

pub(crate) fn job_dto(j: &Job, full: bool) -> Value {
    let mut v = json!({
        "id": j.id,
        "created_by": j.created_by,
        "created_at": time(j.created_at),
        "argv": j.argv,
        "command": j.command,
        "timeout_secs": j.timeout_secs,
        "state": j.state,
        "hosts_total": j.hosts.len(),
        "hosts_ok": j.count("ok"),
        "hosts_failed": j.hosts.len() - j.count("ok") - j.count("pending") - j.count("running"),
    });
    if full {
        v["hosts"] = json!(j.hosts);
    }
    v
}

pub(crate) async fn exec(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    JsonBody(b): JsonBody<ExecInput>,
) -> Result<Response, ApiError> {
    let what = match (&b.argv, &b.command) {
        (Some(a), _) => format!("argv {a:?}"),
        (_, Some(c)) => format!("shell {c:?}"),
        _ => String::new(),
    };
    let job = st
        .hosts
        .exec(&p.user.username, &p.grants, b)
        .await
        .map_err(ApiError::from)?;
    let targets: Vec<String> = job.hosts.iter().map(|h| h.hostname.clone()).collect();
    let resp = (StatusCode::CREATED, axum::Json(job_dto(&job, true))).into_response();
    Ok(noted(
        resp,
        format!("job {} on {}", job.id, targets.join(",")),
        what,
    ))
}

pub(crate) async fn jobs(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    QueryArgs(a): QueryArgs<ListArgs>,
) -> Result<Response, ApiError> {
    let page = Page::of(a.page, a.page_size);
    let (offset, limit) = page.window()?;
    let hosts = st.hosts.clone();
    let (jobs, total) = blocking(move || hosts.jobs(&p.grants, offset, limit)).await?;
    let items: Vec<Value> = jobs.iter().map(|j| job_dto(j, false)).collect();
    Ok(axum::Json(page.answer(items, total)).into_response())
}

pub(crate) async fn job(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let hosts = st.hosts.clone();
    let j = blocking(move || hosts.job(&p.grants, id)).await?;
    Ok(axum::Json(job_dto(&j, true)).into_response())
}

pub(crate) async fn cancel(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let j = st
        .hosts
        .cancel(&p.grants, id)
        .await
        .map_err(ApiError::from)?;
    Ok(noted(
        axum::Json(job_dto(&j, true)).into_response(),
        format!("job {id}"),
        "",
    ))
}

/// What a push needs from this server: its address, pins, installer and binary.
fn push_context(
    st: &AppState,
    headers: &HeaderMap,
) -> Result<crate::hosts::push::PushContext, ApiError> {
    Ok(crate::hosts::push::PushContext {
        server_url: public_url(st, headers)?,
        cert_pin: st.pins.cert.clone(),
        install_script: super::agent::install_script_text(st),
        binary: std::env::current_exe().map_err(ApiError::internal)?,
    })
}

pub(crate) async fn push(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    JsonBody(b): JsonBody<crate::hosts::push::PushRequest>,
) -> Result<Response, ApiError> {
    let ctx = push_context(&st, &headers)?;
    // The credentials stay inside the push; only the target and the login name are recorded.
    let target = format!("{}:{} as {}", b.address, b.port, b.user);
    let job = st
        .hosts
        .start_push(&p.user.username, b, ctx)
        .map_err(ApiError::from)?;
    let resp = (StatusCode::CREATED, axum::Json(&job)).into_response();
    Ok(noted(resp, target, format!("push {}", job.id)))
}

pub(crate) async fn push_list(State(st): State<AppState>) -> Response {
    axum::Json(json!({ "items": st.hosts.push_jobs() })).into_response()
}

pub(crate) async fn push_get(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    Ok(axum::Json(st.hosts.push_job(id)?).into_response())
}

pub(crate) async fn known_hosts(State(st): State<AppState>) -> Result<Response, ApiError> {
    let hosts = st.hosts.clone();
    let v = blocking(move || hosts.known_hosts()).await?;
    let items: Vec<Value> = v
        .iter()
        .map(|k| json!({"target": k.target, "fingerprint": k.fingerprint, "first_seen": time(k.first_seen), "last_seen": time(k.last_seen)}))
        .collect();
    Ok(axum::Json(json!({ "items": items })).into_response())
}

pub(crate) async fn forget_known_host(
    State(st): State<AppState>,
    Path(target): Path<String>,
) -> Result<Response, ApiError> {
    let hosts = st.hosts.clone();
    let k = blocking(move || hosts.forget_known_host(&target)).await?;
    Ok(noted(
        no_content(),
        k.target,
        format!("forgot {}", k.fingerprint),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImportBody {
    csv: String,
    #[serde(default)]
    private_key: Option<String>,
    #[serde(default)]
    passphrase: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

/// Validates a CSV of hosts; when every row is valid (and not a dry run) pushes them all.
pub(crate) async fn import(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    JsonBody(b): JsonBody<ImportBody>,
) -> Result<Response, ApiError> {
    let key = b.private_key.as_deref().filter(|k| !k.trim().is_empty());
    let (rows, requests) = crate::hosts::import::parse(&b.csv, key, b.passphrase.as_deref())
        .map_err(|e| ApiError::new("validation_failed", e).with_details(json!({"field": "csv"})))?;
    let invalid = rows.iter().filter(|r| !r.ok).count();
    let report = json!({"rows": rows, "valid": rows.len() - invalid, "invalid": invalid});
    if invalid > 0 {
        let resp = (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(report)).into_response();
        return Ok(noted(
            resp,
            "hosts import",
            format!("{invalid} invalid rows; nothing started"),
        ));
    }
    if b.dry_run {
        return Ok(noted(
            axum::Json(report).into_response(),
            "hosts import (dry run)",
            format!("{} valid rows", rows.len()),
        ));
    }
    let ctx = push_context(&st, &headers)?;
    let mut pushes = Vec::new();
    for r in requests {
        pushes.push(
            st.hosts
                .start_push(&p.user.username, r, ctx.clone())
                .map_err(ApiError::from)?,
        );
    }
    let targets: Vec<String> = pushes
        .iter()
        .map(|j| format!("{}:{}", j.address, j.port))
        .collect();
    let resp = (
        StatusCode::CREATED,
        axum::Json(json!({"rows": rows, "pushes": pushes})),
    )
        .into_response();
    Ok(noted(
        resp,
        "hosts import",
        format!("pushes to {}", targets.join(", ")),
    ))
}

#[cfg(test)]
mod tests {
    use super::sh_quote;

    #[test]
    fn shell_quoting() {
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's; rm -rf /"), "'it'\\''s; rm -rf /'");
    }
}
