//! `/api/v1/scrape-targets`: custom monitoring targets with their health.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{blocking, time};
use crate::api::error::ApiError;
use crate::api::extract::JsonBody;
use crate::api::{AppState, no_content, noted};
use crate::scrape::Target;

fn dto(t: &Target, st: &AppState) -> Value {
    let h = st.scraper.health(&t.id);
    json!({
        "id": t.id, "job": t.job, "target": t.target, "url": t.url(), "interval_secs": t.interval_secs,
        "timeout_secs": t.timeout_secs, "labels": t.labels, "sample_limit": t.sample_limit,
        "auth": if t.basic_auth.is_some() { "basic" } else if t.bearer_token.is_some() { "bearer" } else { "none" },
        "from_config": t.from_config, "health": h.health, "last_scrape": h.last_scrape.map(|ms| time(ms / 1000)),
        "last_duration_secs": h.last_duration_secs, "last_error": h.last_error, "samples": h.samples,
    })
}

pub(crate) async fn list(State(st): State<AppState>) -> Result<Response, ApiError> {
    let s = st.scraper.clone();
    let targets = blocking(move || s.targets()).await?;
    let items: Vec<Value> = targets.iter().map(|t| dto(t, &st)).collect();
    Ok(axum::Json(json!({ "items": items })).into_response())
}

pub(crate) async fn create(
    State(st): State<AppState>,
    JsonBody(t): JsonBody<Target>,
) -> Result<Response, ApiError> {
    let s = st.scraper.clone();
    let t = blocking(move || s.add(t)).await?;
    let resp = (StatusCode::CREATED, axum::Json(dto(&t, &st))).into_response();
    Ok(noted(
        resp,
        format!("scrape target {} ({})", t.url(), t.job),
        "",
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
