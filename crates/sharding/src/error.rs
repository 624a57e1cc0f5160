//! Errors raised by process groups and launchers.

/// Anything that can go wrong talking to other ranks.
#[derive(Debug, thiserror::Error)]
pub enum ShardingError {
    /// A launcher variable is present but malformed.
    #[error("environment variable {var}={value:?} is not a valid {what}")]
    BadEnv {
        var: String,
        value: String,
        what: &'static str,
    },
    /// A collective failed.
    #[error("collective {op} failed: {msg}")]
    Collective { op: &'static str, msg: String },
}

/// Result with [`ShardingError`].
pub type Result<T> = std::result::Result<T, ShardingError>;
