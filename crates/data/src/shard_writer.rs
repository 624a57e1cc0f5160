//! The one Parquet writer: a shard is written under a hidden temporary name and renamed to its
//! final name only when complete, so readers never see half a shard. Synthetic data, the
//! converters and the task generators all write through it.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::error::{DataError, Result};

/// How shards are encoded.
#[derive(Debug, Clone)]
pub struct ShardFormat {
    /// Most rows per row group (each [`ShardWriter::write`] call ends a group, too).
    pub rows_per_group: usize,
    /// Page compression.
    pub compression: Compression,
    /// Columns of encoded media, written without dictionary or statistics: encoded images
    /// never repeat, and min/max of JPEG bytes helps no reader.
    pub media_columns: Vec<String>,
}

impl ShardFormat {
    /// zstd at its default level, no media columns.
    pub fn new(rows_per_group: usize) -> ShardFormat {
        ShardFormat {
            rows_per_group: rows_per_group.max(1),
            compression: Compression::ZSTD(ZstdLevel::default()),
            media_columns: Vec::new(),
        }
    }

    /// The same with `compression`.
    pub fn with_compression(mut self, compression: Compression) -> ShardFormat {
        self.compression = compression;
        self
    }

    /// The same with `column` written as media.
    pub fn with_media_column(mut self, column: &str) -> ShardFormat {
        self.media_columns.push(column.to_string());
        self
    }

    fn properties(&self) -> WriterProperties {
        let mut b = WriterProperties::builder()
            .set_compression(self.compression)
            .set_max_row_group_row_count(Some(self.rows_per_group));
        for c in &self.media_columns {
            let c = ColumnPath::from(c.as_str());
            b = b
                .set_column_dictionary_enabled(c.clone(), false)
                .set_column_statistics_enabled(c, EnabledStatistics::None);
        }
        b.build()
    }
}

/// An open shard being written; dropped unfinished, it removes its temporary file.
pub struct ShardWriter {
    path: PathBuf,
    tmp: PathBuf,
    writer: Option<ArrowWriter<File>>,
    rows: usize,
}

impl ShardWriter {
    /// Starts `path` with `schema`, encoded as `format`.
    pub fn create(path: &Path, schema: SchemaRef, format: &ShardFormat) -> Result<ShardWriter> {
        let tmp = palisade_files::tmp_path(path);
        let file = File::create(&tmp).map_err(|e| DataError::io(&tmp, e))?;
        let writer = ArrowWriter::try_new(file, schema, Some(format.properties()))
            .map_err(|e| write_err(path, e))?;
        Ok(ShardWriter {
            path: path.to_path_buf(),
            tmp,
            writer: Some(writer),
            rows: 0,
        })
    }

    /// Appends a batch and ends the row group there, so groups follow the caller's batches.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let Some(w) = self.writer.as_mut() else {
            return Err(write_err(&self.path, "the shard is already closed"));
        };
        w.write(batch).map_err(|e| write_err(&self.path, e))?;
        w.flush().map_err(|e| write_err(&self.path, e))?;
        self.rows += batch.num_rows();
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Completes the file and moves it to its final name.
    pub fn finish(self) -> Result<PathBuf> {
        let path = self.path.clone();
        self.close()?.commit_as(&path)?;
        Ok(path)
    }

    /// Completes the file but leaves it under its temporary name, for a writer that names its
    /// shards only once it knows how many there are.
    pub fn close(mut self) -> Result<ClosedShard> {
        let tmp = std::mem::take(&mut self.tmp);
        let closed = ClosedShard { tmp: tmp.clone() };
        if let Some(w) = self.writer.take() {
            w.close().map_err(|e| write_err(&self.path, e))?;
        }
        Ok(closed)
    }
}

impl Drop for ShardWriter {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// A complete shard still under its temporary name; dropped uncommitted, it is removed.
pub struct ClosedShard {
    tmp: PathBuf,
}

impl ClosedShard {
    /// Moves the shard to `path`.
    pub fn commit_as(mut self, path: &Path) -> Result<()> {
        let tmp = std::mem::take(&mut self.tmp);
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            DataError::io(path, e)
        })
    }
}

impl Drop for ClosedShard {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

fn write_err(path: &Path, e: impl std::fmt::Display) -> DataError {
    DataError::Write {
        file: path.to_path_buf(),
        message: e.to_string(),
    }
}
