//! The store's one error type: what a store operation can refuse or fail with,
//! and for a failure of the database itself, whether trying again can help
//! ([`StoreErrorKind`]), judged from SQLite's result code or PostgreSQL's
//! SQLSTATE. The portal maps it onto its own error, and from there onto HTTP.

/// Everything a store operation can answer instead of its result.
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
    /// The requested thing does not exist (or is not this tenant's).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A write that is well-formed but not allowed in the current state (for
    /// example a status change the order state machine refuses).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A field of a record is invalid.
    #[error("`{field}`: {message}")]
    Invalid { field: String, message: String },
}

/// `Result` with the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether a failed store operation may succeed if tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The database was busy, locked, full or out of reach (I/O): the same
    /// operation may succeed later.
    Retryable,
    /// The operation itself is refused (a constraint, a type mismatch) or the
    /// file is not a usable database: trying again gives the same answer.
    Permanent,
}

impl std::fmt::Display for StoreErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StoreErrorKind::Retryable => "retryable",
            StoreErrorKind::Permanent => "permanent",
        })
    }
}

impl StoreErrorKind {
    /// The kind of a SQLite failure, from its result code. Only conditions that
    /// time or an operator can clear are retryable; everything else (and every
    /// error rusqlite raises itself, such as a column of the wrong type) is
    /// permanent, so a caller never retries a refusal forever.
    pub fn of_sqlite(err: &rusqlite::Error) -> StoreErrorKind {
        use rusqlite::ErrorCode;
        match err.sqlite_error_code() {
            Some(
                ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::SystemIoFailure
                | ErrorCode::DiskFull
                | ErrorCode::OutOfMemory
                | ErrorCode::CannotOpen
                | ErrorCode::FileLockingProtocolFailed
                | ErrorCode::ReadOnly
                | ErrorCode::SchemaChanged
                | ErrorCode::OperationInterrupted,
            ) => StoreErrorKind::Retryable,
            _ => StoreErrorKind::Permanent,
        }
    }
}

impl StoreErrorKind {
    /// The kind of a PostgreSQL failure, from its SQLSTATE: a lost or refused
    /// connection, a serialization failure or deadlock (the transaction was
    /// rolled back and may be run again), a lock wait cut short, a server
    /// short of resources or shutting down. An error with no SQLSTATE is a
    /// broken connection when the client says so or an I/O error lies
    /// beneath, and otherwise the client's own refusal (a column of the wrong
    /// type), which is permanent.
    pub fn of_postgres(err: &tokio_postgres::Error) -> StoreErrorKind {
        use tokio_postgres::error::SqlState;
        match err.code() {
            Some(code) => {
                let class = code.code().get(..2).unwrap_or("");
                let retryable = matches!(class, "08" | "53" | "57")
                    || *code == SqlState::T_R_SERIALIZATION_FAILURE
                    || *code == SqlState::T_R_DEADLOCK_DETECTED
                    || *code == SqlState::LOCK_NOT_AVAILABLE;
                if retryable {
                    StoreErrorKind::Retryable
                } else {
                    StoreErrorKind::Permanent
                }
            }
            None => {
                let io = std::error::Error::source(err)
                    .is_some_and(|source| source.is::<std::io::Error>());
                if err.is_closed() || io {
                    StoreErrorKind::Retryable
                } else {
                    StoreErrorKind::Permanent
                }
            }
        }
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(err: tokio_postgres::Error) -> Error {
        // The database's own message names the constraint or column; the
        // client's Display alone says only "db error". Other errors keep the
        // useful part in their causes ("error performing TLS handshake:
        // invalid peer certificate: …").
        let message = match err.as_db_error() {
            Some(db) => format!("{err}: {db}"),
            None => with_causes(&err),
        };
        Error::Store {
            kind: StoreErrorKind::of_postgres(&err),
            message,
        }
    }
}

/// An error followed by its causes, each after a colon.
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

impl From<deadpool_postgres::PoolError> for Error {
    /// No connection to lend: the pool timed out, was closed, or opening a
    /// connection failed. Each may clear up (the server comes back), except a
    /// database error raised while opening one, judged by its SQLSTATE.
    fn from(err: deadpool_postgres::PoolError) -> Error {
        match err {
            deadpool_postgres::PoolError::Backend(pg) => Error::from(pg),
            other => Error::store_retryable(format!("no PostgreSQL connection: {other}")),
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Error {
        Error::Store {
            kind: StoreErrorKind::of_sqlite(&err),
            message: err.to_string(),
        }
    }
}

impl From<engine::StatusTransitionError> for Error {
    fn from(err: engine::StatusTransitionError) -> Error {
        Error::Conflict {
            code: "invalid_transition",
            message: err.to_string(),
        }
    }
}

impl Error {
    /// A store failure that may go away if tried again (a task or thread of
    /// the store not answering, the bus behind it busy).
    pub fn store_retryable(message: impl Into<String>) -> Error {
        Error::Store {
            kind: StoreErrorKind::Retryable,
            message: message.into(),
        }
    }

    /// A store failure that trying again cannot fix (a value the database
    /// cannot hold or hands back unreadable).
    pub fn store_permanent(message: impl Into<String>) -> Error {
        Error::Store {
            kind: StoreErrorKind::Permanent,
            message: message.into(),
        }
    }

    /// Whether the operation may succeed if tried again: retryable store
    /// failures only; refusals never.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Store {
                kind: StoreErrorKind::Retryable,
                ..
            }
        )
    }

    /// An invalid-field error.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}
