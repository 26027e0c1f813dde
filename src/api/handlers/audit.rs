//! `/api/v1/audit`: search, export (CSV/JSON) and chain verification.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::api::AppState;
use crate::api::error::ApiError;
use crate::api::extract::{Page, QueryArgs};
use crate::audit::Filter;
use crate::model::{AuditRecord, AuditResult};

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct Args {
    q: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    result: Option<String>,
    /// RFC 3339 or milliseconds since the epoch.
    since: Option<String>,
    until: Option<String>,
    format: Option<String>,
    page: Option<usize>,
    page_size: Option<usize>,
}

fn parse_time(field: &str, v: &Option<String>) -> Result<Option<i64>, ApiError> {
    let Some(v) = v.as_deref().filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if let Ok(ms) = v.parse::<i64>() {
        return Ok(Some(ms));
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| Some(t.timestamp_millis()))
        .map_err(|_| {
            ApiError::new(
                "bad_request",
                format!("{field} must be RFC 3339 (2026-01-02T03:04:05Z) or epoch milliseconds"),
            )
        })
}

impl Args {
    fn filter(&self) -> Result<Filter, ApiError> {
        let result = match self.result.as_deref() {
            None | Some("") => None,
            Some("success") => Some(AuditResult::Success),
            Some("failure") => Some(AuditResult::Failure),
            Some(other) => {
                return Err(ApiError::new(
                    "bad_request",
                    format!("result must be success or failure, not {other:?}"),
                ));
            }
        };
        let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        Ok(Filter {
            q: nonempty(&self.q),
            actor: nonempty(&self.actor),
            action: nonempty(&self.action),
            result,
            since: parse_time("since", &self.since)?,
            until: parse_time("until", &self.until)?,
        })
    }
}

pub(crate) fn record_dto(r: &AuditRecord) -> serde_json::Value {
    json!({
        "seq": r.seq,
        "time": chrono::DateTime::from_timestamp_millis(r.time).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        "actor": r.actor,
        "action": r.action,
        "target": r.target,
        "source": r.source,
        "result": r.result,
        "status": r.status,
        "detail": r.detail,
        "hash": r.hash,
    })
}

pub(crate) async fn list(
    State(st): State<AppState>,
    QueryArgs(a): QueryArgs<Args>,
) -> Result<Response, ApiError> {
    let page = Page::of(a.page, a.page_size);
    let (offset, limit) = page.window()?;
    let f = a.filter()?;
    let audit = st.audit.clone();
    let (records, total) = super::blocking(move || Ok(audit.list(&f, offset, limit)?)).await?;
    let items: Vec<_> = records.iter().map(record_dto).collect();
    Ok(axum::Json(page.answer(items, total)).into_response())
}

pub(crate) async fn export(
    State(st): State<AppState>,
    QueryArgs(a): QueryArgs<Args>,
) -> Result<Response, ApiError> {
    let f = a.filter()?;
    let format = a.format.clone().unwrap_or_else(|| "json".into());
    if format != "json" && format != "csv" {
        return Err(ApiError::new("bad_request", "format must be csv or json"));
    }
    let audit = st.audit.clone();
    let max = st.config.audit.max_export_records;
    let (records, _) = super::blocking(move || Ok(audit.list(&f, 0, max)?)).await?;
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let (body, ctype, ext) = if format == "csv" {
        let mut out = Vec::new();
        crate::audit::write_csv(&mut out, &records).map_err(ApiError::internal)?;
        (out, "text/csv; charset=utf-8", "csv")
    } else {
        let items: Vec<_> = records.iter().map(record_dto).collect();
        (
            serde_json::to_vec_pretty(&items).map_err(ApiError::internal)?,
            "application/json",
            "json",
        )
    };
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Ok(v) =
        HeaderValue::from_str(&format!("attachment; filename=\"omp-audit-{stamp}.{ext}\""))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

pub(crate) async fn verify(State(st): State<AppState>) -> Result<Response, ApiError> {
    let audit = st.audit.clone();
    let v = super::blocking(move || Ok(audit.verify()?)).await?;
    Ok(axum::Json(v).into_response())
}
