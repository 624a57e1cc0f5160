//! Writing one Parquet shard atomically: rows go to a hidden temporary file, which is renamed
//! to its final name only when complete, so readers never see half a shard.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::{DataError, Result};

/// An open shard being written.
pub struct ShardWriter {
    path: PathBuf,
    tmp: PathBuf,
    writer: ArrowWriter<File>,
}

impl ShardWriter {
    /// Starts `path` with `schema`, zstd compression and at most `rows_per_group` rows per group.
    pub fn create(path: &Path, schema: SchemaRef, rows_per_group: usize) -> Result<ShardWriter> {
        let tmp = crate::atomic::tmp_path(path);
        let file = File::create(&tmp).map_err(|e| DataError::io(&tmp, e))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(rows_per_group.max(1)))
            .build();
        let writer =
            ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| write_err(path, e))?;
        Ok(ShardWriter {
            path: path.to_path_buf(),
            tmp,
            writer,
        })
    }

    /// Appends a batch (one row group per call, so groups follow the caller's batches).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer
            .write(batch)
            .map_err(|e| write_err(&self.path, e))?;
        self.writer.flush().map_err(|e| write_err(&self.path, e))
    }

    /// Completes the file and moves it to its final name.
    pub fn finish(self) -> Result<PathBuf> {
        let ShardWriter { path, tmp, writer } = self;
        if let Err(e) = writer.close() {
            let _ = std::fs::remove_file(&tmp);
            return Err(write_err(&path, e));
        }
        crate::atomic::commit(&tmp, &path)?;
        Ok(path)
    }
}

fn write_err(path: &Path, e: impl std::fmt::Display) -> DataError {
    DataError::Write {
        file: path.to_path_buf(),
        message: e.to_string(),
    }
}
