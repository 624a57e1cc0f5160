//! Finding shards and indexing them from their Parquet footers.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{RecordBatch, RecordBatchReader};
use std::sync::Arc;

use arrow::datatypes::{DataType, FieldRef, Schema, SchemaRef};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;

use crate::column::TextColumn;
use crate::error::{DataError, Result};
use crate::spec::DataSpec;

/// Expands a glob (relative to `base` unless absolute) into a sorted list of files.
///
/// A pattern naming a directory means every `*.parquet` file in it.
pub fn resolve_shards(pattern: &str, base: &Path) -> Result<Vec<PathBuf>> {
    if crate::remote::is_remote(pattern) {
        return crate::remote::resolve(pattern);
    }
    let err = |message: String| DataError::Pattern {
        pattern: pattern.to_string(),
        message,
    };
    let joined = base.join(pattern);
    let full = if joined.is_dir() {
        format!(
            "{}/*.parquet",
            glob::Pattern::escape(&path_str(&joined, pattern)?)
        )
    } else if Path::new(pattern).is_absolute() {
        pattern.to_string()
    } else {
        // Escape the base so brackets or stars in folder names are taken literally.
        let base = glob::Pattern::escape(&path_str(base, pattern)?);
        format!("{}/{pattern}", base.trim_end_matches('/'))
    };
    let mut files = Vec::new();
    for entry in glob::glob(&full).map_err(|e| err(format!("invalid glob: {e}")))? {
        let path =
            entry.map_err(|e| err(format!("cannot read {}: {}", e.path().display(), e.error())))?;
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(err(format!("matches no files (searched {full})")));
    }
    Ok(files)
}

/// Every file of several patterns (globs, folders), each resolved as [`resolve_shards`], in
/// the order given.
pub fn resolve_all<S: AsRef<str>>(patterns: &[S], base: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in patterns {
        files.extend(resolve_shards(p.as_ref(), base)?);
    }
    Ok(files)
}

fn path_str(path: &Path, pattern: &str) -> Result<String> {
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| DataError::Pattern {
            pattern: pattern.to_string(),
            message: format!("{} is not valid UTF-8", path.display()),
        })
}

/// One (shard, row group) with its row count: the loader's unit of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    /// Index into [`ShardIndex::shards`].
    pub shard: usize,
    /// Row group within the shard.
    pub row_group: usize,
    /// Rows in the row group.
    pub rows: usize,
}

/// Footer information about one Parquet shard.
#[derive(Debug, Clone)]
pub struct ShardInfo {
    path: PathBuf,
    row_groups: Vec<usize>,
    meta: ArrowReaderMetadata,
    /// The schema under the spec's column names (the file's, renamed by the binding).
    schema: SchemaRef,
    /// For each field of `schema`, its root column in the file.
    roots: Vec<usize>,
    /// The object, when the shard lives in object storage (its path is then the URL).
    remote: Option<Arc<crate::remote::RemoteFile>>,
}

impl ShardInfo {
    /// Reads the footer of `path`; fails if it is not a readable Parquet file.
    pub fn open(path: &Path) -> Result<ShardInfo> {
        Self::open_as(path, &BTreeMap::new())
    }

    /// Reads the footer of `path` and shows its columns under the spec's names: `columns` maps
    /// a spec column to the file's (`image` → `jpg`); a file column a mapping replaces is
    /// hidden. A mapped column the file lacks is an error naming the columns it has.
    pub fn open_as(path: &Path, columns: &BTreeMap<String, String>) -> Result<ShardInfo> {
        let url = path.to_str().filter(|p| crate::remote::is_remote(p));
        let (meta, remote) = match url {
            Some(url) => {
                let file = crate::remote::RemoteFile::open(url)?;
                (file.metadata()?, Some(Arc::new(file)))
            }
            None => {
                let file = File::open(path).map_err(|e| DataError::io(path, e))?;
                let meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(
                    |source| DataError::Parquet {
                        file: path.to_path_buf(),
                        source,
                    },
                )?;
                (meta, None)
            }
        };
        let meta = match plain_schema(meta.schema()) {
            // Read Arrow dictionary columns (pandas categoricals, pyarrow dictionary_encode) as
            // their value type, so specs and the loader see plain utf8/binary.
            Some(schema) => ArrowReaderMetadata::try_new(
                meta.metadata().clone(),
                ArrowReaderOptions::new().with_schema(schema),
            )
            .map_err(|source| DataError::Parquet {
                file: path.to_path_buf(),
                source,
            })?,
            None => meta,
        };
        let row_groups = meta
            .metadata()
            .row_groups()
            .iter()
            .map(|rg| usize::try_from(rg.num_rows()).unwrap_or(0))
            .collect();
        let (schema, roots) = renamed(meta.schema(), columns).map_err(|(column, role)| {
            let has = column_names(meta.schema());
            DataError::Schema {
                file: path.to_path_buf(),
                column,
                message: format!(
                    "is mapped to {role:?} by `columns:` but the file has no such column; its \
                     columns are {}",
                    has.join(", ")
                ),
            }
        })?;
        Ok(ShardInfo {
            path: path.to_path_buf(),
            row_groups,
            meta,
            schema,
            roots,
            remote,
        })
    }

    /// The shard's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Row count of each row group.
    pub fn row_groups(&self) -> &[usize] {
        &self.row_groups
    }

    /// Total rows in the shard.
    pub fn rows(&self) -> usize {
        self.row_groups.iter().sum()
    }

    /// The shard's Arrow schema, under the spec's column names.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Whether the shard has a top-level column `name`.
    pub fn has_column(&self, name: &str) -> bool {
        self.schema().field_with_name(name).is_ok()
    }

    /// Reads one row group, projecting only `columns` (which must all exist).
    pub fn read_row_group(&self, row_group: usize, columns: &[&str]) -> Result<RecordBatch> {
        let rg_err = |message: String| DataError::RowGroup {
            file: self.path.clone(),
            row_group,
            message,
        };
        let expected = *self.row_groups.get(row_group).ok_or_else(|| {
            rg_err(format!(
                "out of range: the file has {}",
                self.row_groups.len()
            ))
        })?;
        let roots = self.roots_of(columns, row_group)?;
        let (schema, batches) = match &self.remote {
            Some(file) => {
                let batches = file
                    .read_row_group(&self.meta, row_group, &roots, expected.max(1))
                    .map_err(rg_err)?;
                let schema = match batches.first() {
                    Some(b) => b.schema(),
                    None => return Err(rg_err("no data".into())),
                };
                (schema, batches)
            }
            None => {
                let file = File::open(&self.path).map_err(|e| DataError::io(&self.path, e))?;
                let mask = ProjectionMask::roots(self.meta.parquet_schema(), roots);
                let reader =
                    ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.meta.clone())
                        .with_row_groups(vec![row_group])
                        .with_projection(mask)
                        .with_batch_size(expected.max(1))
                        .build()
                        .map_err(|e| rg_err(e.to_string()))?;
                let schema = reader.schema();
                let batches = reader
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| rg_err(e.to_string()))?;
                (schema, batches)
            }
        };
        let batch = match batches.len() {
            1 => batches
                .into_iter()
                .next()
                .ok_or_else(|| rg_err("no data".into()))?,
            _ => arrow::compute::concat_batches(&schema, &batches)
                .map_err(|e| rg_err(e.to_string()))?,
        };
        if batch.num_rows() != expected {
            return Err(rg_err(format!(
                "read {} rows but the footer promises {expected}",
                batch.num_rows()
            )));
        }
        self.under_spec_names(batch).map_err(rg_err)
    }

    /// Whether the shard lives in object storage.
    pub fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// Starts fetching row group `row_group`'s `columns` ahead, for a shard in object storage
    /// (local files need no read-ahead: the page cache does it).
    pub fn prefetch_row_group(&self, row_group: usize, columns: &[&str]) {
        if let (Some(file), Ok(roots)) = (&self.remote, self.roots_of(columns, row_group)) {
            let rows = self.row_groups.get(row_group).copied().unwrap_or(1).max(1);
            file.prefetch(&self.meta, row_group, &roots, rows);
        }
    }

    /// The file's root columns of the spec-named `columns`.
    fn roots_of(&self, columns: &[&str], row_group: usize) -> Result<Vec<usize>> {
        columns
            .iter()
            .map(|name| {
                let idx = self
                    .schema()
                    .index_of(name)
                    .map_err(|_| DataError::Schema {
                        file: self.path.clone(),
                        column: name.to_string(),
                        message: format!(
                            "needed by the loader (row group {row_group}) but missing"
                        ),
                    })?;
                Ok(self.roots[idx])
            })
            .collect()
    }

    /// `batch` (projected file columns) with each column under its spec name.
    fn under_spec_names(&self, batch: RecordBatch) -> std::result::Result<RecordBatch, String> {
        if Arc::ptr_eq(&self.schema, self.meta.schema()) {
            return Ok(batch);
        }
        let file = self.meta.schema();
        let fields: Vec<FieldRef> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| {
                let root = file.index_of(f.name()).map_err(|e| e.to_string())?;
                let i = self.roots.iter().position(|r| *r == root);
                Ok(i.map_or_else(|| f.clone(), |i| self.schema.fields()[i].clone()))
            })
            .collect::<std::result::Result<_, String>>()?;
        RecordBatch::try_new(Arc::new(Schema::new(fields)), batch.columns().to_vec())
            .map_err(|e| e.to_string())
    }
}

/// `file`'s fields under the spec's names (`columns`: spec name → file column) with each one's
/// root index in the file; a file column shadowed by a mapped name is left out. Err: (missing
/// file column, its role).
fn renamed(
    file: &SchemaRef,
    columns: &BTreeMap<String, String>,
) -> std::result::Result<(SchemaRef, Vec<usize>), (String, String)> {
    if columns.is_empty() {
        return Ok((file.clone(), (0..file.fields().len()).collect()));
    }
    for (role, column) in columns {
        if file.index_of(column).is_err() {
            return Err((column.clone(), role.clone()));
        }
    }
    let role_of: BTreeMap<&str, &str> = columns
        .iter()
        .map(|(r, c)| (c.as_str(), r.as_str()))
        .collect();
    let mut fields = Vec::new();
    let mut roots = Vec::new();
    for (i, f) in file.fields().iter().enumerate() {
        let name = match role_of.get(f.name().as_str()) {
            Some(role) => *role,
            // A column under a mapped role's name is replaced by the mapped one.
            None if columns.contains_key(f.name()) => continue,
            None => f.name().as_str(),
        };
        fields.push(Arc::new(f.as_ref().clone().with_name(name)));
        roots.push(i);
    }
    let schema = Schema::new_with_metadata(fields, file.metadata().clone());
    Ok((Arc::new(schema), roots))
}

/// `schema` with top-level dictionary types replaced by their value types, if it has any.
fn plain_schema(schema: &SchemaRef) -> Option<SchemaRef> {
    let is_dict = |f: &FieldRef| matches!(f.data_type(), DataType::Dictionary(..));
    if !schema.fields().iter().any(is_dict) {
        return None;
    }
    let fields: Vec<FieldRef> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Dictionary(_, value) => {
                Arc::new(f.as_ref().clone().with_data_type(value.as_ref().clone()))
            }
            _ => f.clone(),
        })
        .collect();
    Some(Arc::new(Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    )))
}

/// The top-level column names of `schema`, in order.
pub(crate) fn column_names(schema: &Schema) -> Vec<&str> {
    schema.fields().iter().map(|f| f.name().as_str()).collect()
}

/// Row-group layout of a set of shards, read from their footers only.
#[derive(Debug, Clone)]
pub struct ShardIndex {
    shards: Vec<ShardInfo>,
}

impl ShardIndex {
    /// Reads every shard's footer and checks its schema against `spec`.
    pub fn build(paths: &[PathBuf], spec: &DataSpec) -> Result<ShardIndex> {
        if paths.is_empty() {
            return Err(DataError::config("shards", "no shard files given"));
        }
        let mut shards = Vec::with_capacity(paths.len());
        for path in paths {
            let info = ShardInfo::open_as(path, &spec.binding.columns)?;
            spec.check_schema(info.schema(), path)?;
            tracing::debug!(
                path = %path.display(),
                row_groups = info.row_groups.len(),
                rows = info.rows(),
                "indexed shard"
            );
            shards.push(info);
        }
        Ok(ShardIndex { shards })
    }

    /// The indexed shards, in the order given.
    pub fn shards(&self) -> &[ShardInfo] {
        &self.shards
    }

    /// Total rows over all shards.
    pub fn total_rows(&self) -> usize {
        self.shards.iter().map(ShardInfo::rows).sum()
    }

    /// All non-empty (shard, row group) units in file order.
    pub fn units(&self) -> Vec<Unit> {
        self.shards
            .iter()
            .enumerate()
            .flat_map(|(shard, info)| {
                info.row_groups
                    .iter()
                    .enumerate()
                    .filter(|(_, rows)| **rows > 0)
                    .map(move |(row_group, &rows)| Unit {
                        shard,
                        row_group,
                        rows,
                    })
            })
            .collect()
    }

    /// The shard paths joined for messages, abbreviated past a few.
    pub fn describe(&self) -> String {
        describe_paths(self.shards.iter().map(|s| s.path.as_path()))
    }
}

/// Joins paths for an error message, listing at most three.
pub(crate) fn describe_paths<'a>(paths: impl ExactSizeIterator<Item = &'a Path>) -> String {
    let n = paths.len();
    let mut shown: Vec<String> = paths.take(3).map(|p| p.display().to_string()).collect();
    if n > 3 {
        shown.push(format!("and {} more", n - 3));
    }
    shown.join(", ")
}

/// Reads every non-null value of a text column of one shard.
pub fn read_text_column(path: &Path, column: &str) -> Result<Vec<String>> {
    let info = ShardInfo::open(path)?;
    let mut out = Vec::with_capacity(info.rows());
    for rg in 0..info.row_groups.len() {
        let batch = info.read_row_group(rg, &[column])?;
        let array = batch.column(0);
        let col = TextColumn::new(array).ok_or_else(|| DataError::Schema {
            file: path.to_path_buf(),
            column: column.to_string(),
            message: format!("has type {}, expected text", array.data_type()),
        })?;
        out.extend((0..batch.num_rows()).filter_map(|row| col.get(row)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{write_shapes, ShapesConfig};

    fn small(dir: &Path, rows: usize) -> Vec<PathBuf> {
        let cfg = ShapesConfig {
            rows,
            image_size: 16,
            rows_per_shard: 24,
            rows_per_group: 8,
            seed: 3,
            ..ShapesConfig::default()
        };
        write_shapes(dir, &cfg).unwrap().shards
    }

    #[test]
    fn mapped_columns_read_under_the_spec_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = &small(dir.path(), 8)[0];
        let map = BTreeMap::from([("text".to_string(), "primary_shape".to_string())]);
        let info = ShardInfo::open_as(path, &map).unwrap();
        // The file's own `text` is hidden behind the mapped one.
        let names = column_names(info.schema());
        assert_eq!(names.iter().filter(|n| **n == "text").count(), 1);
        assert!(!names.contains(&"primary_shape"));
        let got = info.read_row_group(0, &["id", "text"]).unwrap();
        let want = ShardInfo::open(path)
            .unwrap()
            .read_row_group(0, &["primary_shape"])
            .unwrap();
        assert_eq!(got.schema().field(1).name(), "text");
        assert_eq!(got.column(1).as_ref(), want.column(0).as_ref());

        let bad = BTreeMap::from([("image".to_string(), "jpg".to_string())]);
        let e = ShardInfo::open_as(path, &bad).unwrap_err().to_string();
        assert!(
            e.contains("jpg") && e.contains("\"image\"") && e.contains("id, image, text"),
            "{e}"
        );
    }

    #[test]
    fn resolve_sorts_and_accepts_dirs_and_absolute_paths() {
        let dir = tempfile::tempdir().unwrap();
        let shards = small(dir.path(), 40);
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let found = resolve_shards("*.parquet", dir.path()).unwrap();
        assert_eq!(found, shards);
        assert!(found.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(resolve_shards(".", dir.path()).unwrap(), shards);
        let abs = format!("{}/shapes-*", dir.path().display());
        assert_eq!(
            resolve_shards(&abs, Path::new("/nonexistent")).unwrap(),
            shards
        );
    }

    #[test]
    fn resolve_names_pattern_when_nothing_matches() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve_shards("train-*.parquet", dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("train-*.parquet") && err.contains("matches no files"),
            "{err}"
        );
        let err = resolve_shards("[", dir.path()).unwrap_err().to_string();
        assert!(err.contains("invalid glob"), "{err}");
    }

    #[test]
    fn index_reads_row_groups_from_footers() {
        let dir = tempfile::tempdir().unwrap();
        let shards = small(dir.path(), 40);
        let index = ShardIndex::build(&shards, &DataSpec::embedded("webli").unwrap()).unwrap();
        assert_eq!(index.total_rows(), 40);
        assert_eq!(index.shards()[0].row_groups(), &[8, 8, 8]);
        assert_eq!(index.shards()[1].row_groups(), &[8, 8]);
        let units = index.units();
        assert_eq!(units.len(), 5);
        assert_eq!(
            units[3],
            Unit {
                shard: 1,
                row_group: 0,
                rows: 8
            }
        );
    }

    #[test]
    fn read_row_group_projects_columns() {
        let dir = tempfile::tempdir().unwrap();
        let shards = small(dir.path(), 40);
        let info = ShardInfo::open(&shards[1]).unwrap();
        let batch = info.read_row_group(1, &["text", "id"]).unwrap();
        assert_eq!(batch.num_columns(), 2);
        assert_eq!(batch.num_rows(), 8);
        let ids = TextColumn::new(batch.column_by_name("id").unwrap()).unwrap();
        assert_eq!(ids.get(0).as_deref(), Some("shapes-3-32"));
        let err = info.read_row_group(2, &["text"]).unwrap_err().to_string();
        assert!(err.contains("row group 2"), "{err}");
        let err = info.read_row_group(0, &["nope"]).unwrap_err().to_string();
        assert!(err.contains("\"nope\""), "{err}");
    }

    #[test]
    fn non_parquet_and_truncated_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let shards = small(dir.path(), 8);
        let spec = DataSpec::embedded("webli").unwrap();
        let fake = dir.path().join("fake.parquet");
        std::fs::write(&fake, b"this is not parquet at all, just text").unwrap();
        let err = ShardIndex::build(&[shards[0].clone(), fake], &spec)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("fake.parquet") && err.contains("Parquet"),
            "{err}"
        );

        let bytes = std::fs::read(&shards[0]).unwrap();
        let cut = dir.path().join("cut.parquet");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let err = ShardIndex::build(&[cut], &spec).unwrap_err().to_string();
        assert!(err.contains("cut.parquet"), "{err}");
    }

    #[test]
    fn schema_mismatch_names_file_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let shards = small(dir.path(), 8);
        let yaml = "name: t\ncolumns: [{name: caption, type: utf8}]\n";
        let spec = DataSpec::parse(yaml, Path::new("t.yaml")).unwrap();
        let err = ShardIndex::build(&shards, &spec).unwrap_err().to_string();
        assert!(
            err.contains("shapes-00000-of-00001.parquet") && err.contains("caption"),
            "{err}"
        );
    }

    #[test]
    fn text_column_reads_all_rows() {
        let dir = tempfile::tempdir().unwrap();
        let shards = small(dir.path(), 20);
        let texts = read_text_column(&shards[0], "text").unwrap();
        assert_eq!(texts.len(), 20);
        assert!(texts.iter().all(|t| !t.is_empty()));
        let err = read_text_column(&shards[0], "image")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"image\"") && err.contains("expected text"),
            "{err}"
        );
    }
}
