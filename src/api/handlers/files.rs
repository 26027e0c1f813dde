//! `/api/v1/hosts/{id}/files`: upload a file to a host (raw body) and download one.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::parse_id;
use crate::api::error::ApiError;
use crate::api::extract::{JsonBody, QueryArgs};
use crate::api::{AppState, noted};
use crate::auth::Principal;

#[derive(Deserialize)]
pub(crate) struct UploadArgs {
    path: String,
    /// Octal, e.g. `0644` (default 0644).
    #[serde(default)]
    mode: Option<String>,
    /// `user[:group]`.
    #[serde(default)]
    owner: Option<String>,
}

pub(crate) async fn upload(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    QueryArgs(a): QueryArgs<UploadArgs>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let host_id = parse_id(&id)?;
    let max = st.config.files.max_bytes;
    let mode = match a.mode.as_deref().filter(|m| !m.is_empty()) {
        None => 0o644,
        Some(m) => u32::from_str_radix(m.trim_start_matches("0o"), 8).map_err(|_| {
            ApiError::new(
                "validation_failed",
                format!("mode must be octal like 0644, not {m:?}"),
            )
            .with_details(json!({"field": "mode"}))
        })?,
    };
    let bytes = axum::body::to_bytes(body, max as usize)
        .await
        .map_err(|_| {
            ApiError::new(
                "payload_too_large",
                format!("the file is larger than files.max_bytes ({max} bytes)"),
            )
        })?;
    if let Some(want) = headers
        .get("x-content-sha256")
        .and_then(|v| v.to_str().ok())
    {
        use sha2::Digest;
        let got = data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(&bytes));
        if !got.eq_ignore_ascii_case(want.trim()) {
            return Err(ApiError::new(
                "validation_failed",
                format!("the upload arrived damaged: its SHA-256 is {got}, the header says {want}"),
            )
            .with_details(json!({"field": "x-content-sha256"})));
        }
    }
    let owner = a.owner.filter(|o| !o.is_empty());
    let r = st
        .hosts
        .upload(&p.grants, host_id, &a.path, mode, owner.clone(), &bytes)
        .await
        .map_err(ApiError::from)?;
    let body = json!({"path": a.path, "size": r.size, "sha256": r.sha256, "mode": format!("{mode:04o}"), "owner": owner});
    Ok(noted(
        axum::Json(body).into_response(),
        format!("host {host_id}:{}", a.path),
        format!("{} bytes sha256 {}", r.size, r.sha256),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DownloadBody {
    path: String,
}

pub(crate) async fn download(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<DownloadBody>,
) -> Result<Response, ApiError> {
    let host_id = parse_id(&id)?;
    let max = st.config.files.max_bytes;
    let r = st
        .hosts
        .download(&p.grants, host_id, &b.path, max)
        .await
        .map_err(ApiError::from)?;
    let name: String = b
        .path
        .rsplit('/')
        .next()
        .unwrap_or("file")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .collect();
    let detail = format!("{} bytes sha256 {}", r.size, r.sha256);
    let sha = r.sha256.clone();
    let mut resp = r.bytes.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&sha) {
        h.insert("x-content-sha256", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(noted(resp, format!("host {host_id}:{}", b.path), detail))
}
