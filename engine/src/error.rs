//! The engine's one error type. Bad telemetry is not an error (it is an outcome of
//! matching); errors here are misuse or invalid configuration.

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A status change that the order state machine does not allow.
    #[error(transparent)]
    StatusTransition(#[from] crate::order::StatusTransitionError),
    /// A configuration value out of its valid range; names the setting.
    #[error("invalid setting `{setting}`: {reason}")]
    InvalidConfig { setting: &'static str, reason: String },
}

/// `Result` with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
