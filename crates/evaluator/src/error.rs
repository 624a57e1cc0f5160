//! Errors raised while evaluating and reporting.

/// Anything that can go wrong in an evaluation run or a report.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// Inputs to an evaluation are inconsistent.
    #[error("{0}")]
    Invalid(String),
    /// A report file could not be written.
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// A run file (metric log, report, config) could not be parsed; `line` is 1-based.
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Malformed {
        path: std::path::PathBuf,
        line: Option<usize>,
        message: String,
    },
    /// From the scorers.
    #[error(transparent)]
    Metrics(#[from] palisade_metrics::MetricsError),
    /// From the model crate.
    #[error(transparent)]
    Model(#[from] palisade_model::ModelError),
    /// From the data crate.
    #[error(transparent)]
    Data(#[from] palisade_data::DataError),
    /// A collective between ranks failed.
    #[error(transparent)]
    Sharding(#[from] palisade_sharding::ShardingError),
    /// libtorch reported an error.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

impl From<palisade_files::FileError> for EvalError {
    fn from(e: palisade_files::FileError) -> Self {
        EvalError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

/// Result with [`EvalError`].
pub type Result<T> = std::result::Result<T, EvalError>;
