//! The crate's single error type.

use std::path::PathBuf;

/// Everything that can go wrong while reading specs, shards, images or tokenizers.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file could not be opened, read, written or renamed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A data spec file is malformed or inconsistent.
    #[error("data spec {path}: {message}")]
    Spec {
        /// The spec file (or `<embedded:NAME>`).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// No spec of that name exists, neither on disk nor compiled in.
    #[error("no data spec named {name:?}: {path} does not exist and none is built in (built in: {known})")]
    UnknownSpec {
        /// The name asked for.
        name: String,
        /// Where it was looked for on disk.
        path: PathBuf,
        /// The names compiled into the binary.
        known: String,
    },

    /// A shard's schema does not match the spec (or the loader's needs).
    #[error("{file}: column {column:?}: {message}")]
    Schema {
        /// The shard.
        file: PathBuf,
        /// The column involved.
        column: String,
        /// What is wrong.
        message: String,
    },

    /// A file is not Parquet, or its footer could not be read.
    #[error("{file}: not a readable Parquet file: {source}")]
    Parquet {
        /// The file.
        file: PathBuf,
        /// The underlying error.
        source: parquet::errors::ParquetError,
    },

    /// A row group could not be read or decoded as a whole.
    #[error("{file}: row group {row_group}: {message}")]
    RowGroup {
        /// The shard.
        file: PathBuf,
        /// The row group index within the shard.
        row_group: usize,
        /// What went wrong.
        message: String,
    },

    /// Writing a Parquet shard failed.
    #[error("{file}: writing Parquet failed: {message}")]
    Write {
        /// The file being written.
        file: PathBuf,
        /// What went wrong.
        message: String,
    },

    /// Image bytes could not be decoded or encoded.
    #[error("image: {0}")]
    Image(String),

    /// Training, loading, saving or using a tokenizer failed.
    #[error("tokenizer {context}: {message}")]
    Tokenizer {
        /// The tokenizer file, or what was being done.
        context: String,
        /// What went wrong.
        message: String,
    },

    /// Object storage refused or failed a request (missing bucket or key, bad credentials).
    #[error("{url}: {message}")]
    Remote {
        /// The object or bucket URL.
        url: String,
        /// The provider's error.
        message: String,
    },

    /// A shard glob pattern is invalid or matches nothing.
    #[error("shard pattern {pattern:?}: {message}")]
    Pattern {
        /// The pattern as given.
        pattern: String,
        /// What went wrong.
        message: String,
    },

    /// This rank would receive no rows at all.
    #[error("empty dataset: rank {rank} of {world} gets no rows from {shards}")]
    EmptyDataset {
        /// The rank asking.
        rank: usize,
        /// The number of ranks.
        world: usize,
        /// The shards, listed (possibly abbreviated).
        shards: String,
    },

    /// Location tokens or a box are malformed.
    #[error("malformed box: {0}")]
    Box(String),
    /// A configuration value is out of range.
    #[error("invalid config: {key}: {message}")]
    Config {
        /// The offending key.
        key: String,
        /// What is wrong with it.
        message: String,
    },

    /// A source entry (annotation, question, ref, tar sample, manifest line) is malformed or
    /// names an image that cannot be read.
    #[error("{file}: {entry}: {message}")]
    Entry {
        /// The annotation file, pickle, tar or manifest holding the entry.
        file: PathBuf,
        /// Which entry: index, id or key.
        entry: String,
        /// What is wrong.
        message: String,
    },

    /// A conversion found no rows to write.
    #[error("{input}: nothing to convert: {message}")]
    NoRows {
        /// The source that yielded nothing.
        input: PathBuf,
        /// Why, e.g. a split filter matched no refs.
        message: String,
    },
}

impl From<palisade_files::FileError> for DataError {
    fn from(e: palisade_files::FileError) -> Self {
        DataError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, DataError>;

impl DataError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    /// A configuration error for `key`.
    pub(crate) fn config(key: &str, message: impl Into<String>) -> Self {
        DataError::Config {
            key: key.to_string(),
            message: message.into(),
        }
    }
}
