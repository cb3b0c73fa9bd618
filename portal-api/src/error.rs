//! The crate's one error type, and [`AppError`], the only way an error leaves the
//! HTTP layer: a status code plus a JSON body `{"error": {"code", "message"}}` that
//! names the bad field and never leaks internals (those go to the log).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Everything that can go wrong in the portal outside of request validation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A storage URL or backend that is not usable; names the setting.
    #[error("invalid setting `{setting}`: {reason}")]
    InvalidConfig {
        setting: &'static str,
        reason: String,
    },
    /// The database refused or failed; `kind` says whether trying again can
    /// help, so callers can retry the one and set aside the other.
    #[error("store ({kind}): {message}")]
    Store {
        kind: StoreErrorKind,
        message: String,
    },
    /// The fan-out backend (Redis) failed.
    #[error("fan-out: {0}")]
    FanOut(String),
    /// The requested thing does not exist (or is not this tenant's).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A request that is well-formed but not allowed in the current state
    /// (for example a status change the order state machine refuses).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A field of a request is invalid.
    #[error("`{field}`: {message}")]
    Invalid { field: String, message: String },
    /// Another tracker server answered a [`crate::client::Client`] request
    /// with an error: its status and error code.
    #[error("HTTP {status} `{code}`: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// A [`crate::client::Client`] request got no answer (connection refused,
    /// reset, timed out).
    #[error("unreachable: {0}")]
    Unreachable(String),
}

/// `Result` with the portal's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub use store::StoreErrorKind;

impl From<store::Error> for Error {
    /// The store's answer, as the portal says it: the same refusal or failure
    /// under the same name.
    fn from(err: store::Error) -> Error {
        match err {
            store::Error::InvalidConfig { setting, reason } => {
                Error::InvalidConfig { setting, reason }
            }
            store::Error::Store { kind, message } => Error::Store { kind, message },
            store::Error::NotFound(what) => Error::NotFound(what),
            store::Error::Conflict { code, message } => Error::Conflict { code, message },
            store::Error::Invalid { field, message } => Error::Invalid { field, message },
        }
    }
}

impl From<redis::RedisError> for Error {
    fn from(err: redis::RedisError) -> Error {
        Error::FanOut(err.to_string())
    }
}

impl Error {
    /// A store failure that may go away if tried again (a task or thread of
    /// the store not answering, the bus behind it busy).
    pub fn store_retryable(message: impl Into<String>) -> Error {
        Error::from(store::Error::store_retryable(message))
    }

    /// A store failure that trying again cannot fix (a value the database
    /// cannot hold or hands back unreadable).
    pub fn store_permanent(message: impl Into<String>) -> Error {
        Error::from(store::Error::store_permanent(message))
    }

    /// Whether the operation may succeed if tried again: retryable store
    /// failures and fan-out failures (Redis reconnects); not refusals.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Store { kind, .. } => *kind == StoreErrorKind::Retryable,
            Error::FanOut(_) | Error::Unreachable(_) => true,
            // Overload, rate limits and server trouble pass; refusals do not.
            Error::Api { status, .. } => *status == 429 || *status >= 500,
            Error::InvalidConfig { .. }
            | Error::NotFound(_)
            | Error::Conflict { .. }
            | Error::Invalid { .. } => false,
        }
    }

    /// An invalid-field error.
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An HTTP error response: status, stable machine-readable code, human message.
#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds to put in `Retry-After` (rate limiting).
    pub retry_after_s: Option<u64>,
}

impl AppError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> AppError {
        AppError {
            status,
            code,
            message: message.into(),
            retry_after_s: None,
        }
    }

    /// A 400 naming the bad field.
    pub(crate) fn invalid(
        field: impl std::fmt::Display,
        message: impl std::fmt::Display,
    ) -> AppError {
        AppError::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            format!("`{field}`: {message}"),
        )
    }

    /// A 422: the request is well formed but asks for something that cannot
    /// be tracked (a stop off the map, stops out of order); names the field.
    pub(crate) fn unprocessable(
        code: &'static str,
        field: impl std::fmt::Display,
        message: impl std::fmt::Display,
    ) -> AppError {
        AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            code,
            format!("`{field}`: {message}"),
        )
    }

    /// The one 404 for anything missing, so nothing hints whether it ever existed.
    pub(crate) fn not_found(what: &str) -> AppError {
        AppError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }
}

impl From<store::Error> for AppError {
    fn from(err: store::Error) -> AppError {
        AppError::from(Error::from(err))
    }
}

impl From<Error> for AppError {
    fn from(err: Error) -> AppError {
        match err {
            Error::Invalid { field, message } => AppError::invalid(field, message),
            Error::NotFound(what) => AppError::not_found(what),
            Error::Conflict { code, message } => AppError::new(StatusCode::CONFLICT, code, message),
            other => {
                // Internals go to the log only; the client gets a generic message.
                tracing::error!(error = %other, "internal error");
                AppError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; it has been logged",
                )
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after_s
            && let Ok(value) = axum::http::HeaderValue::from_str(&seconds.to_string())
        {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, value);
        }
        response
    }
}
