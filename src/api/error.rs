//! The HTTP error table: every error the API returns has a stable code, an HTTP status and a
//! message. 5xx bodies hide internals (the log keeps them, under an id the body names).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::Error;

/// One error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

/// Every code with its status and meaning; the OpenAPI document lists this table.
pub const TABLE: &[(&str, u16, &str)] = &[
    (
        "bad_request",
        400,
        "the request is malformed (query string, path or headers)",
    ),
    (
        "invalid_json",
        400,
        "the body is not valid JSON of the expected shape",
    ),
    (
        "unsupported_media_type",
        415,
        "send the body as application/json",
    ),
    (
        "validation_failed",
        422,
        "a field has an invalid value (details.field)",
    ),
    ("unauthenticated", 401, "sign in or send an API token"),
    ("invalid_credentials", 401, "wrong username or password"),
    ("totp_required", 401, "the account needs a TOTP code"),
    ("totp_invalid", 401, "the TOTP code is wrong or expired"),
    ("session_expired", 401, "the session or token has expired"),
    (
        "forbidden",
        403,
        "a permission is missing (details.permission)",
    ),
    (
        "csrf_failed",
        403,
        "the X-CSRF-Token header is missing or wrong",
    ),
    (
        "password_change_required",
        403,
        "change the password first (POST /api/v1/auth/password)",
    ),
    (
        "refused",
        409,
        "the action would break an invariant (e.g. remove the last administrator)",
    ),
    ("not_found", 404, "no such object or route"),
    (
        "method_not_allowed",
        405,
        "the route does not take this method",
    ),
    ("conflict", 409, "the object already exists or is in use"),
    (
        "payload_too_large",
        413,
        "the body is larger than server.max_body_bytes",
    ),
    (
        "too_many_attempts",
        429,
        "too many failed logins: wait details.retry_after_secs",
    ),
    (
        "internal",
        500,
        "an internal error; the server log has the details under the given id",
    ),
];

impl ApiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        let status = TABLE
            .iter()
            .find(|(c, _, _)| *c == code)
            .and_then(|(_, s, _)| StatusCode::from_u16(*s).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// An internal error: logged in full, answered with an id only.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        let id = crate::auth::password::random_hex(6);
        tracing::error!(error_id = %id, error = %e, "Request failed with an internal error.");
        ApiError::new(
            "internal",
            format!("internal error {id}: the server log has the details"),
        )
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let msg = e.to_string();
        match e {
            Error::Validation { field, .. } => {
                ApiError::new("validation_failed", msg).with_details(json!({ "field": field }))
            }
            Error::NotFound(_) => ApiError::new("not_found", msg),
            Error::Conflict(_) => ApiError::new("conflict", msg),
            Error::Refused(_) => ApiError::new("refused", msg),
            Error::Unauthenticated => ApiError::new("unauthenticated", msg),
            Error::InvalidCredentials => ApiError::new("invalid_credentials", msg),
            Error::TotpRequired => ApiError::new("totp_required", msg),
            Error::TotpInvalid => ApiError::new("totp_invalid", msg),
            Error::SessionExpired => ApiError::new("session_expired", msg),
            Error::Forbidden(p) => {
                ApiError::new("forbidden", msg).with_details(json!({ "permission": p }))
            }
            Error::PasswordChangeRequired => ApiError::new("password_change_required", msg),
            Error::TooManyAttempts { retry_after_secs } => ApiError::new("too_many_attempts", msg)
                .with_details(json!({ "retry_after_secs": retry_after_secs })),
            Error::Store(_) | Error::Internal(_) => ApiError::internal(msg),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::from(Error::from(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": { "code": self.code, "message": self.message } });
        if let Some(d) = &self.details {
            body["error"]["details"] = d.clone();
        }
        let retry = self
            .details
            .as_ref()
            .and_then(|d| d.get("retry_after_secs"))
            .and_then(|v| v.as_u64());
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(v) = retry.and_then(|secs| secs.to_string().parse().ok()) {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, v);
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_status_and_codes_are_unique() {
        let mut codes: Vec<_> = TABLE.iter().map(|(c, _, _)| *c).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), TABLE.len());
        for (code, status, _) in TABLE {
            assert_eq!(ApiError::new(code, "x").status.as_u16(), *status);
        }
    }

    #[test]
    fn service_errors_map_to_table_codes() {
        let e: ApiError = Error::TooManyAttempts {
            retry_after_secs: 7,
        }
        .into();
        assert_eq!(e.status.as_u16(), 429);
        assert_eq!(e.details.unwrap()["retry_after_secs"], 7);
        let e: ApiError = Error::Internal("secret path /x".into()).into();
        assert_eq!(e.status.as_u16(), 500);
        assert!(!e.message.contains("/x"));
    }
}
