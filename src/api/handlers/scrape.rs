//! `/api/v1/scrape-targets`: custom monitoring targets with their health; `/api/v1/remote-write`:
//! how the remote-write endpoints are doing.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{blocking, time};
use crate::api::error::ApiError;
use crate::api::extract::JsonBody;
use crate::api::{AppState, no_content, noted};
use crate::auth::Principal;
use crate::scrape::Target;

fn dto(t: &Target, st: &AppState, names: &HashMap<u64, String>) -> Value {
    let h = st.scraper.health(&t.id);
    json!({
        "id": t.id, "job": t.job, "target": t.target, "url": t.url(), "interval_secs": t.interval_secs,
        "timeout_secs": t.timeout_secs, "labels": t.labels, "sample_limit": t.sample_limit,
        "auth": if t.basic_auth.is_some() { "basic" } else if t.bearer_token.is_some() { "bearer" } else { "none" },
        "from_config": t.from_config, "health": h.health, "last_scrape": h.last_scrape.map(|ms| time(ms / 1000)),
        "last_duration_secs": h.last_duration_secs, "last_error": h.last_error, "samples": h.samples,
        "via_host": t.via_host, "via_hostname": t.via_host.and_then(|id| names.get(&id)),
    })
}

/// Host id → hostname, for `via_hostname`.
fn host_names(st: &AppState) -> HashMap<u64, String> {
    st.hosts
        .all_records()
        .unwrap_or_default()
        .into_iter()
        .map(|h| (h.id, h.inventory.hostname))
        .collect()
}

/// A target scraped by an agent needs the permission on that host (and the host must exist).
fn check_via_host(st: &AppState, p: &Principal, t: &Target) -> Result<(), ApiError> {
    if let Some(id) = t.via_host {
        st.hosts
            .get(&p.grants, id, "metrics:write")
            .map_err(|e| match e {
                crate::error::Error::NotFound(_) => {
                    ApiError::from(crate::error::Error::validation(
                        "via_host",
                        format!("there is no host {id}: pick one from GET /api/v1/hosts"),
                    ))
                }
                other => ApiError::from(other),
            })?;
    }
    Ok(())
}

pub(crate) async fn list(State(st): State<AppState>) -> Result<Response, ApiError> {
    let s = st.scraper.clone();
    let targets = blocking(move || s.targets()).await?;
    let names = host_names(&st);
    let items: Vec<Value> = targets.iter().map(|t| dto(t, &st, &names)).collect();
    Ok(axum::Json(json!({ "items": items })).into_response())
}

pub(crate) async fn create(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    JsonBody(t): JsonBody<Target>,
) -> Result<Response, ApiError> {
    check_via_host(&st, &p, &t)?;
    let s = st.scraper.clone();
    let t = blocking(move || s.add(t)).await?;
    let resp = (
        StatusCode::CREATED,
        axum::Json(dto(&t, &st, &host_names(&st))),
    )
        .into_response();
    Ok(noted(
        resp,
        format!("scrape target {} ({})", t.url(), t.job),
        "",
    ))
}

/// Replaces a target's settings (`clear_auth: true` drops stored credentials; otherwise
/// they are kept unless new ones are given).
pub(crate) async fn update(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    JsonBody(mut body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let clear_auth = match body.as_object_mut().and_then(|o| o.remove("clear_auth")) {
        None => false,
        Some(Value::Bool(b)) => b,
        Some(_) => {
            return Err(crate::error::Error::validation(
                "clear_auth",
                "clear_auth is true or false",
            )
            .into());
        }
    };
    let t: Target = serde_json::from_value(body)
        .map_err(|e| ApiError::new("bad_request", format!("bad scrape target: {e}")))?;
    check_via_host(&st, &p, &t)?;
    let s = st.scraper.clone();
    let t = blocking(move || s.update(&id, t, clear_auth)).await?;
    let resp = axum::Json(dto(&t, &st, &host_names(&st))).into_response();
    Ok(noted(
        resp,
        format!("scrape target {} ({})", t.url(), t.job),
        if clear_auth {
            "credentials removed"
        } else {
            ""
        },
    ))
}

pub(crate) async fn remove(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let s = st.scraper.clone();
    let t = blocking(move || s.remove(&id)).await?;
    Ok(noted(
        no_content(),
        format!("scrape target {} ({})", t.url(), t.job),
        "",
    ))
}

/// Remote-write endpoints (from omp.toml) with their queues and last error.
pub(crate) async fn remote_write(State(st): State<AppState>) -> Result<Response, ApiError> {
    let items: Vec<Value> = st
        .metrics
        .remote_status()
        .into_iter()
        .map(|s| {
            let mut v = json!(s);
            v["last_success"] = s
                .last_success
                .map(|ms| time(ms / 1000))
                .unwrap_or(Value::Null);
            v
        })
        .collect();
    Ok(axum::Json(json!({ "items": items })).into_response())
}
