//! Streams converted rows into zstd Parquet shards of fixed-size row groups, under temporary
//! names that become `PREFIX-XXXXX-of-NNNNN.parquet` only when the conversion finishes.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::ConvertConfig;
use crate::atomic;
use crate::error::{DataError, Result};

/// zstd level: level 3 is zstd's own default, a good speed/size balance for text columns.
const ZSTD_LEVEL: i32 = 3;

/// A row type a converter produces.
pub(crate) trait ConvertRow: Sized {
    /// The Arrow schema every shard of this kind has.
    fn schema() -> SchemaRef;
    /// The columns of `rows`, in schema order.
    fn columns(rows: &[Self]) -> Vec<ArrayRef>;
}

/// One shard being written.
struct OpenShard {
    tmp: PathBuf,
    writer: ArrowWriter<File>,
    rows: usize,
}

/// Writes rows into shards, one row group per `rows_per_group` rows.
pub(crate) struct DatasetWriter<R: ConvertRow> {
    cfg: ConvertConfig,
    props: WriterProperties,
    pending: Vec<R>,
    open: Option<OpenShard>,
    /// Finished shards under their temporary names.
    done: Vec<PathBuf>,
    rows: usize,
    committed: bool,
}

impl<R: ConvertRow> DatasetWriter<R> {
    /// Checks the config and that `out_dir` holds no shards with this prefix yet.
    pub(crate) fn new(cfg: &ConvertConfig) -> Result<DatasetWriter<R>> {
        cfg.validate()?;
        let dir = &cfg.out_dir;
        std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
        // New shards beside old ones with another total count would silently mix datasets.
        let starts = format!("{}-", cfg.prefix);
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
        let image = ColumnPath::from("image");
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(zstd))
            .set_max_row_group_row_count(Some(cfg.rows_per_group))
            // Encoded images never repeat and min/max of JPEG bytes helps no reader.
            .set_column_dictionary_enabled(image.clone(), false)
            .set_column_statistics_enabled(image, EnabledStatistics::None)
            .build();
        Ok(DatasetWriter {
            cfg: cfg.clone(),
            props,
            pending: Vec::with_capacity(cfg.rows_per_group),
            open: None,
            done: Vec::new(),
            rows: 0,
            committed: false,
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
        let in_shard = self.open.as_ref().map_or(0, |s| s.rows) + self.pending.len();
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
        for (i, tmp) in self.done.iter().enumerate() {
            let path = self
                .cfg
                .out_dir
                .join(format!("{}-{i:05}-of-{n:05}.parquet", self.cfg.prefix));
            atomic::commit(tmp, &path)?;
            finals.push(path);
        }
        self.committed = true;
        Ok(finals)
    }

    fn write_group(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if self.open.is_none() {
            self.open = Some(self.open_shard()?);
        }
        let Some(shard) = self.open.as_mut() else {
            return Ok(());
        };
        let werr = |message: String| DataError::Write {
            file: shard.tmp.clone(),
            message,
        };
        let batch = RecordBatch::try_new(R::schema(), R::columns(&self.pending))
            .map_err(|e| werr(e.to_string()))?;
        shard
            .writer
            .write(&batch)
            .map_err(|e| werr(e.to_string()))?;
        // Close the row group here so group boundaries follow rows_per_group exactly.
        shard.writer.flush().map_err(|e| werr(e.to_string()))?;
        shard.rows += self.pending.len();
        self.pending.clear();
        if shard.rows >= self.cfg.rows_per_shard {
            self.close_shard()?;
        }
        Ok(())
    }

    fn open_shard(&self) -> Result<OpenShard> {
        let index = self.done.len();
        let name = format!("{}-{index:05}.parquet", self.cfg.prefix);
        let tmp = atomic::tmp_path(&self.cfg.out_dir.join(name));
        let file = File::create(&tmp).map_err(|e| DataError::io(&tmp, e))?;
        let writer =
            ArrowWriter::try_new(file, R::schema(), Some(self.props.clone())).map_err(|e| {
                DataError::Write {
                    file: tmp.clone(),
                    message: e.to_string(),
                }
            })?;
        Ok(OpenShard {
            tmp,
            writer,
            rows: 0,
        })
    }

    fn close_shard(&mut self) -> Result<()> {
        if let Some(shard) = self.open.take() {
            let tmp = shard.tmp;
            // Record it first so a failed close still gets its temporary file removed.
            self.done.push(tmp.clone());
            shard.writer.close().map_err(|e| DataError::Write {
                file: tmp,
                message: e.to_string(),
            })?;
        }
        Ok(())
    }
}

impl<R: ConvertRow> Drop for DatasetWriter<R> {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        // A failed conversion leaves no shards behind, not even hidden partial ones.
        let open = self.open.take().map(|s| s.tmp);
        for tmp in self.done.iter().chain(open.iter()) {
            let _ = std::fs::remove_file(tmp);
        }
    }
}
