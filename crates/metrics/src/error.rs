//! Errors raised while scoring.

/// Inputs a scorer cannot score, or a result file it cannot read.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Inputs are inconsistent; the message names the file, entry or task.
    #[error("{0}")]
    Invalid(String),
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// From the data crate (reference shards, boxes).
    #[error(transparent)]
    Data(#[from] palisade_data::DataError),
}

/// Result with [`MetricsError`].
pub type Result<T> = std::result::Result<T, MetricsError>;
