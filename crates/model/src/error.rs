//! Errors raised while building, loading or running models.

use std::path::PathBuf;

/// Anything that can go wrong in the model crate; each names the file, key or tensor involved.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A config value is unknown or inconsistent.
    #[error("model config: {0}")]
    Config(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A JSON config file is malformed.
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// Weights in a file do not match the model.
    #[error("{path}: {msg}")]
    Weights { path: PathBuf, msg: String },
    /// An input tensor has the wrong shape or type.
    #[error("input {name}: {msg}")]
    Input { name: String, msg: String },
    /// libtorch reported an error.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

impl From<palisade_files::FileError> for ModelError {
    fn from(e: palisade_files::FileError) -> Self {
        ModelError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

/// Result with [`ModelError`].
pub type Result<T> = std::result::Result<T, ModelError>;
