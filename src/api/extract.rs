//! Request extractors whose rejections use the error table instead of axum's plain-text ones.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON body; malformed JSON, a wrong content type or an oversized body each get their
/// own error code.
pub(crate) struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(JsonBody(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                "unsupported_media_type",
                "send the body with Content-Type: application/json",
            )),
            Err(JsonRejection::BytesRejection(r)) if r.status().as_u16() == 413 => {
                Err(ApiError::new(
                    "payload_too_large",
                    "the request body is too large (server.max_body_bytes)",
                ))
            }
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::new(
                "invalid_json",
                format!(
                    "the body does not have the expected shape: {}",
                    e.body_text()
                ),
            )),
            Err(e) => Err(ApiError::new(
                "invalid_json",
                format!("the body is not valid JSON: {}", e.body_text()),
            )),
        }
    }
}

/// Query-string arguments.
pub(crate) struct QueryArgs<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryArgs<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| QueryArgs(q.0))
            .map_err(|e: QueryRejection| {
                ApiError::new(
                    "bad_request",
                    format!("bad query string: {}", e.body_text()),
                )
            })
    }
}

/// `?page=&page_size=` with limits.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(default)]
pub(crate) struct Page {
    pub page: usize,
    pub page_size: usize,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            page: 1,
            page_size: 50,
        }
    }
}

impl Page {
    pub(crate) const MAX_SIZE: usize = 500;

    /// From optional query values, defaulting what is missing.
    pub(crate) fn of(page: Option<usize>, page_size: Option<usize>) -> Self {
        let d = Page::default();
        Page {
            page: page.unwrap_or(d.page),
            page_size: page_size.unwrap_or(d.page_size),
        }
    }

    /// (offset, limit) after checking bounds.
    pub(crate) fn window(&self) -> Result<(usize, usize), ApiError> {
        if self.page == 0 || self.page_size == 0 || self.page_size > Self::MAX_SIZE {
            return Err(ApiError::new(
                "bad_request",
                format!("page starts at 1 and page_size is 1..={}", Self::MAX_SIZE),
            ));
        }
        Ok((
            (self.page - 1).saturating_mul(self.page_size),
            self.page_size,
        ))
    }

    pub(crate) fn answer<T: serde::Serialize>(
        &self,
        items: Vec<T>,
        total: u64,
    ) -> serde_json::Value {
        serde_json::json!({ "items": items, "total": total, "page": self.page, "page_size": self.page_size })
    }
}
