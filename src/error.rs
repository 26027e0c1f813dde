//! The error type of the application services. Each variant maps to one entry of the HTTP
//! error table in `api::error`; services never see HTTP types themselves.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{message}")]
    Validation {
        field: &'static str,
        message: String,
    },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("sign in first")]
    Unauthenticated,
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("a TOTP code is required for this account")]
    TotpRequired,
    #[error("the TOTP code is wrong or expired")]
    TotpInvalid,
    #[error("the session has expired: sign in again")]
    SessionExpired,
    #[error("missing permission {0}")]
    Forbidden(String),
    #[error("{0}")]
    Refused(String),
    #[error("the password must be changed first")]
    PasswordChangeRequired,
    #[error("too many failed attempts: try again in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn validation(field: &'static str, message: impl Into<String>) -> Self {
        Error::Validation {
            field,
            message: message.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
