//! Streams converted rows into zstd Parquet shards of fixed-size row groups, under temporary
//! names that become `PREFIX-XXXXX-of-NNNNN.parquet` only when the conversion finishes.

use std::path::{Path, PathBuf};

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::SchemaRef;
use parquet::basic::{Compression, ZstdLevel};

use super::ConvertConfig;
use crate::error::{DataError, Result};
use crate::shard_writer::{ClosedShard, ShardFormat, ShardWriter};

/// zstd level: level 3 is zstd's own default, a good speed/size balance for text columns.
const ZSTD_LEVEL: i32 = 3;

/// A row type a converter produces.
pub(crate) trait ConvertRow: Sized {
    /// The data spec the shards follow (and their default file prefix).
    const SPEC: &'static str;
    /// The Arrow schema every shard of this kind has.
    fn schema() -> SchemaRef;
    /// The columns of `rows`, in schema order.
    fn columns(rows: &[Self]) -> Vec<ArrayRef>;
}

/// Writes rows into shards, one row group per `rows_per_group` rows.
pub(crate) struct DatasetWriter<R: ConvertRow> {
    cfg: ConvertConfig,
    prefix: String,
    format: ShardFormat,
    pending: Vec<R>,
    open: Option<ShardWriter>,
    /// Finished shards under their temporary names (removed if the conversion fails).
    done: Vec<ClosedShard>,
    rows: usize,
}

impl<R: ConvertRow> DatasetWriter<R> {
    /// Checks the config and that `out_dir` holds no shards with this prefix yet.
    pub(crate) fn new(cfg: &ConvertConfig) -> Result<DatasetWriter<R>> {
        cfg.validate()?;
        let dir = &cfg.out_dir;
        std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
        // New shards beside old ones with another total count would silently mix datasets.
        let prefix = cfg.prefix.clone().unwrap_or_else(|| R::SPEC.to_string());
        let starts = format!("{prefix}-");
        let mut old = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
            let name = entry.map_err(|e| DataError::io(dir, e))?.file_name();
            let name = name.to_string_lossy().into_owned();
            if name.starts_with(&starts) && name.ends_with(".parquet") {
                old.push(name);
            }
        }
        old.sort();
        if let Some(first) = old.first() {
            let more = match old.len() {
                1 => String::new(),
                n => format!(" and {} more", n - 1),
            };
            return Err(DataError::config(
                "out",
                format!(
                    "{} already holds {first}{more}; remove the old shards or choose another \
                     --out or --prefix",
                    dir.display()
                ),
            ));
        }
        let zstd = ZstdLevel::try_new(ZSTD_LEVEL)
            .map_err(|e| DataError::config("zstd_level", e.to_string()))?;
        let format = ShardFormat::new(cfg.rows_per_group)
            .with_compression(Compression::ZSTD(zstd))
            .with_media_column("image");
        Ok(DatasetWriter {
            cfg: cfg.clone(),
            prefix,
            format,
            pending: Vec::with_capacity(cfg.rows_per_group),
            open: None,
            done: Vec::new(),
            rows: 0,
        })
    }

    /// Rows accepted so far.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Adds one row; writes a row group when one is full.
    pub(crate) fn push(&mut self, row: R) -> Result<()> {
        self.pending.push(row);
        self.rows += 1;
        let in_shard = self.open.as_ref().map_or(0, |s| s.rows()) + self.pending.len();
        if self.pending.len() == self.cfg.rows_per_group || in_shard == self.cfg.rows_per_shard {
            self.write_group()?;
        }
        Ok(())
    }

    /// Writes what is pending, then renames every shard to its final name.
    ///
    /// `input` names the source in the error returned when there were no rows at all.
    pub(crate) fn finish(mut self, input: &Path) -> Result<Vec<PathBuf>> {
        self.write_group()?;
        self.close_shard()?;
        if self.done.is_empty() {
            return Err(DataError::NoRows {
                input: input.to_path_buf(),
                message: "no entry produced a row".into(),
            });
        }
        let n = self.done.len();
        let mut finals = Vec::with_capacity(n);
        for (i, shard) in std::mem::take(&mut self.done).into_iter().enumerate() {
            let path = self
                .cfg
                .out_dir
                .join(format!("{}-{i:05}-of-{n:05}.parquet", self.prefix));
            shard.commit_as(&path)?;
            finals.push(path);
        }
        Ok(finals)
    }

    fn write_group(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let shard = match self.open.as_mut() {
            Some(s) => s,
            None => {
                let name = format!("{}-{:05}.parquet", self.prefix, self.done.len());
                let path = self.cfg.out_dir.join(name);
                self.open
                    .insert(ShardWriter::create(&path, R::schema(), &self.format)?)
            }
        };
        let batch = RecordBatch::try_new(R::schema(), R::columns(&self.pending)).map_err(|e| {
            DataError::Write {
                file: self.cfg.out_dir.clone(),
                message: e.to_string(),
            }
        })?;
        shard.write(&batch)?;
        self.pending.clear();
        if shard.rows() >= self.cfg.rows_per_shard {
            self.close_shard()?;
        }
        Ok(())
    }

    fn close_shard(&mut self) -> Result<()> {
        if let Some(shard) = self.open.take() {
            self.done.push(shard.close()?);
        }
        Ok(())
    }
}
