//! Serves the embedded UI: assets with their content type, precompressed variants, long
//! cache for hashed files, and `index.html` for every other non-API path (SPA fallback).

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::api::error::ApiError;

pub(crate) async fn serve(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return ApiError::new("method_not_allowed", "only GET is served here").into_response();
    }
    let gzip_ok = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|e| e.trim().split(';').next() == Some("gzip"))
        });
    let path = uri.path().trim_start_matches('/');
    let found = if path.is_empty() {
        None
    } else {
        crate::ui::asset(path, gzip_ok)
    };
    let (asset, is_index) = match found {
        Some(a) => (a, false),
        None if path.starts_with("assets/") => {
            // A missing hashed asset is a real 404: answering index.html would confuse the
            // browser into parsing HTML as a script.
            return (StatusCode::NOT_FOUND, "not found").into_response();
        }
        None => match crate::ui::asset("index.html", gzip_ok) {
            Some(a) => (a, true),
            None => {
                return (
                    StatusCode::NOT_FOUND,
                    "the UI is not built into this binary",
                )
                    .into_response();
            }
        },
    };
    let mut resp = if method == Method::HEAD {
        Vec::<u8>::new().into_response()
    } else {
        asset.body.into_owned().into_response()
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&asset.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Some(enc) = asset.encoding {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(enc));
    }
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    let cache = if asset.immutable && !is_index {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    resp
}
