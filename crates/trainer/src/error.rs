//! Errors raised by the trainer; each names the file, key or step involved.

use std::path::PathBuf;

/// Anything that can stop a training run.
#[derive(Debug, thiserror::Error)]
pub enum TrainerError {
    /// A config key or value is wrong.
    #[error("config: {0}")]
    Config(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A checkpoint is missing pieces or does not fit the run.
    #[error("checkpoint {path}: {msg}")]
    Checkpoint { path: PathBuf, msg: String },
    /// Training diverged or produced non-finite values.
    #[error("step {step}: {msg}")]
    Numerics { step: u64, msg: String },
    /// From the model crate.
    #[error(transparent)]
    Model(#[from] palisade_model::ModelError),
    /// From the data crate.
    #[error(transparent)]
    Data(#[from] palisade_data::DataError),
    /// From the evaluator.
    #[error(transparent)]
    Eval(#[from] palisade_evaluator::EvalError),
    /// From the process group.
    #[error(transparent)]
    Sharding(#[from] palisade_sharding::ShardingError),
    /// libtorch reported an error.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

impl From<palisade_files::FileError> for TrainerError {
    fn from(e: palisade_files::FileError) -> Self {
        TrainerError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

/// Result with [`TrainerError`].
pub type Result<T> = std::result::Result<T, TrainerError>;

/// Maps an io::Error to one naming `path`.
pub fn io_at(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainerError {
    let path = path.into();
    move |source| TrainerError::Io { path, source }
}
