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
    /// A collective was handed a tensor it cannot carry.
    #[error("collective {op} on rank {rank}: {msg}")]
    BadTensor {
        op: &'static str,
        rank: usize,
        msg: String,
    },
    /// The backend could not start.
    #[error("process group {backend}: {msg}")]
    Init { backend: &'static str, msg: String },
    /// The launcher's variables and the backend disagree about who is who.
    #[error(
        "the launcher environment ({source_vars} variables) says rank {env_rank} of {env_world}, \
         but {backend} says rank {backend_rank} of {backend_world}; launch every rank through the \
         same launcher (mpirun, srun or palisade launch)"
    )]
    WorldMismatch {
        source_vars: &'static str,
        env_rank: usize,
        env_world: usize,
        backend: &'static str,
        backend_rank: usize,
        backend_world: usize,
    },
    /// Ranks were started with different experiment configs.
    #[error("ranks disagree on the config: {msg}")]
    ConfigMismatch { msg: String },
}

/// Result with [`ShardingError`].
pub type Result<T> = std::result::Result<T, ShardingError>;
