//! `POST /api/v1/metrics/import`: backfill exposition text with timestamps (the input
//! `promtool tsdb create-blocks-from openmetrics` reads). `omp tsdb import --server` uses it.

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::api::error::ApiError;
use crate::api::extract::QueryArgs;
use crate::api::{AppState, noted};
use crate::tsdb::exposition::Format;

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct Args {
    /// `openmetrics` (timestamps in seconds, the default) or `prometheus` (milliseconds).
    format: Option<String>,
}

/// Largest import body (a bigger backfill goes in parts, or with the server stopped).
const MAX_IMPORT: usize = 256 * 1024 * 1024;

pub(crate) async fn import(
    State(st): State<AppState>,
    QueryArgs(a): QueryArgs<Args>,
    body: Body,
) -> Result<Response, ApiError> {
    let format = match a.format.as_deref() {
        None | Some("") | Some("openmetrics") => Format::OpenMetrics,
        Some("prometheus") => Format::Prometheus,
        Some(o) => {
            return Err(ApiError::new(
                "bad_request",
                format!("format must be openmetrics or prometheus, not {o:?}"),
            ));
        }
    };
    let bytes = axum::body::to_bytes(body, MAX_IMPORT).await.map_err(|_| {
        ApiError::new(
            "payload_too_large",
            format!("an import body is at most {MAX_IMPORT} bytes: split the file"),
        )
    })?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::new("bad_request", "the body is not UTF-8 text"))?;
    let metrics = st.metrics.clone();
    let report = tokio::task::spawn_blocking(move || {
        let r = crate::metrics::import_text(&text, format, |b| metrics.ingest_now(b));
        if let Ok(r) = &r {
            metrics.note_meta(&r.meta);
        }
        r
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| {
        ApiError::new("validation_failed", e).with_details(serde_json::json!({"field": "body"}))
    })?;
    let detail = format!("{} accepted, {} rejected", report.accepted, report.rejected);
    Ok(noted(
        axum::Json(&report).into_response(),
        "metrics import",
        detail,
    ))
}
