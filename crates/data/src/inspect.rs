//! `palisade data inspect`: checks shards against a data spec and summarises them — rows, row
//! groups, columns, a few sample rows, and every bad row (null required field, undecodable
//! image) with its file, row group, row and column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde::Serialize;

use crate::column::{BytesColumn, ImageColumn, ListColumn, TextColumn};
use crate::error::Result;
use crate::shards::ShardInfo;
use crate::spec::DataSpec;

/// One shard's shape.
#[derive(Debug, Clone, Serialize)]
pub struct ShardSummary {
    /// The file.
    pub path: PathBuf,
    /// Rows.
    pub rows: usize,
    /// Rows per row group.
    pub row_groups: Vec<usize>,
}

/// A row that training would skip.
#[derive(Debug, Clone, Serialize)]
pub struct BadRow {
    /// The file.
    pub file: PathBuf,
    /// Row group index.
    pub row_group: usize,
    /// Row within the row group.
    pub row: usize,
    /// Offending column.
    pub column: String,
    /// What is wrong.
    pub reason: String,
}

/// What `inspect` found.
#[derive(Debug, Clone, Serialize)]
pub struct InspectReport {
    /// The spec the shards were checked against.
    pub spec: String,
    /// Column names and Arrow types of the first shard.
    pub columns: Vec<(String, String)>,
    /// Per-shard shapes.
    pub shards: Vec<ShardSummary>,
    /// Rows in all shards.
    pub total_rows: usize,
    /// The first rows, each column rendered short.
    pub samples: Vec<BTreeMap<String, String>>,
    /// Bad rows found (at most the requested number are listed).
    pub bad_rows: Vec<BadRow>,
    /// Bad rows in all.
    pub bad_count: usize,
    /// Rows whose img2dataset `status` is not `success` (skipped by the loader, not checked).
    pub not_downloaded: usize,
}

/// The built-in spec that `file`'s schema satisfies with the most required columns, read
/// through `columns` (specs without every mapped column are passed over).
pub fn guess_spec(info: &ShardInfo, columns: &BTreeMap<String, String>) -> Option<DataSpec> {
    DataSpec::embedded_names()
        .into_iter()
        .filter_map(|n| {
            DataSpec::embedded(n)
                .ok()?
                .bind(columns, None, "columns")
                .ok()
        })
        .filter(|s| s.check_schema(info.schema(), info.path()).is_ok())
        .max_by_key(|s| s.columns.iter().filter(|c| c.required).count())
}

/// Checks the shards `patterns` (globs, folders) match against the spec `spec` names (a built-in
/// name or a YAML path, see [`DataSpec::named`]; default: the best-fitting built-in spec), its
/// columns found under the shards' names `columns` (`image` → `jpg`).
pub fn inspect_patterns<S: AsRef<str>>(
    patterns: &[S],
    spec: Option<&str>,
    columns: &BTreeMap<String, String>,
    samples: usize,
    max_bad: usize,
) -> Result<InspectReport> {
    let paths = crate::shards::resolve_all(patterns, std::path::Path::new("."))?;
    let spec = spec
        .map(|s| DataSpec::named(s)?.bind(columns, None, "--columns"))
        .transpose()?;
    inspect(&paths, spec.as_ref(), columns, samples, max_bad)
}

/// Checks every shard against `spec` (or the best-fitting built-in spec) and reads every row.
pub fn inspect(
    paths: &[PathBuf],
    spec: Option<&DataSpec>,
    columns: &BTreeMap<String, String>,
    samples: usize,
    max_bad: usize,
) -> Result<InspectReport> {
    let columns = spec.map_or(columns, |s| &s.binding.columns);
    let infos = paths
        .iter()
        .map(|p| ShardInfo::open_as(p, columns))
        .collect::<Result<Vec<_>>>()?;
    let first = infos
        .first()
        .ok_or_else(|| crate::error::DataError::config("shards", "no shard given"))?;
    let spec = match spec {
        Some(s) => s.clone(),
        None => guess_spec(first, columns).ok_or_else(|| {
            crate::error::DataError::config(
                "spec",
                format!(
                    "{} fits none of the built-in specs ({}); name one with --spec",
                    first.path().display(),
                    DataSpec::embedded_names().join(", ")
                ),
            )
        })?,
    };
    let mut report = InspectReport {
        spec: spec.name.clone(),
        columns: first
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().to_string()))
            .collect(),
        shards: Vec::new(),
        total_rows: 0,
        samples: Vec::new(),
        bad_rows: Vec::new(),
        bad_count: 0,
        not_downloaded: 0,
    };
    for info in &infos {
        spec.check_schema(info.schema(), info.path())?;
        let names = crate::shards::column_names(info.schema());
        // Where a Hugging Face image struct's relative paths start.
        let dir = info.path().parent().unwrap_or(Path::new("."));
        for (rg, _) in info.row_groups().iter().enumerate() {
            let batch = info.read_row_group(rg, &names)?;
            if report.samples.len() < samples {
                report
                    .samples
                    .extend(sample_rows(&batch, samples - report.samples.len(), dir));
            }
            let downloaded = downloaded_rows(&batch, &spec);
            report.not_downloaded += downloaded.iter().filter(|d| !**d).count();
            for bad in bad_rows(&batch, &spec, info.path(), dir, rg, &downloaded) {
                report.bad_count += 1;
                if report.bad_rows.len() < max_bad {
                    report.bad_rows.push(bad);
                }
            }
        }
        report.total_rows += info.rows();
        report.shards.push(ShardSummary {
            path: info.path().to_path_buf(),
            rows: info.rows(),
            row_groups: info.row_groups().to_vec(),
        });
    }
    Ok(report)
}

/// The frames of `row` in a list<binary> column (any list encoding).
fn frames_at(array: &arrow::array::ArrayRef, row: usize) -> Option<BytesColumn> {
    ListColumn::new(array)?.byte_items(row)
}

/// Per row, whether it holds a download: img2dataset's `status` is `success` (every row when
/// the spec or the shard has no status).
fn downloaded_rows(batch: &RecordBatch, spec: &DataSpec) -> Vec<bool> {
    let status = spec
        .column(crate::loader::STATUS_COLUMN)
        .and(batch.column_by_name(crate::loader::STATUS_COLUMN))
        .and_then(TextColumn::new);
    (0..batch.num_rows())
        .map(|row| {
            status
                .as_ref()
                .is_none_or(|s| s.get(row).as_deref() == Some(crate::loader::STATUS_OK))
        })
        .collect()
}

fn bad_rows(
    batch: &RecordBatch,
    spec: &DataSpec,
    file: &Path,
    dir: &Path,
    row_group: usize,
    downloaded: &[bool],
) -> Vec<BadRow> {
    let mut out = Vec::new();
    let bad = |row: usize, column: &str, reason: String| BadRow {
        file: file.to_path_buf(),
        row_group,
        row,
        column: column.to_string(),
        reason,
    };
    for col in spec.columns.iter().filter(|c| c.required) {
        let Some(array) = batch.column_by_name(&col.name) else {
            continue;
        };
        let images = (col.name == "image")
            .then(|| ImageColumn::new(array, dir))
            .flatten();
        for row in (0..batch.num_rows()).filter(|r| downloaded[*r]) {
            if array.is_null(row) {
                out.push(bad(row, &col.name, "null in a required column".into()));
            } else if let Some(images) = &images {
                let decoded = images
                    .get(row)
                    .and_then(|b| crate::image_ops::decode_rgb(&b).map_err(|e| e.to_string()));
                if let Err(e) = decoded {
                    out.push(bad(row, &col.name, e));
                }
            } else if col.name == "frames" {
                match frames_at(array, row) {
                    None => out.push(bad(row, &col.name, "not a list of binary".into())),
                    Some(frames) if frames.len() == 0 => {
                        out.push(bad(row, &col.name, "an empty list".into()))
                    }
                    Some(frames) => {
                        for f in 0..frames.len() {
                            let reason = match frames.get(f) {
                                None => "null".to_string(),
                                Some(b) => match crate::image_ops::decode_rgb(b) {
                                    Ok(_) => continue,
                                    Err(e) => e.to_string(),
                                },
                            };
                            out.push(bad(row, &col.name, format!("frame {f}: {reason}")));
                        }
                    }
                }
            }
        }
    }
    out
}

/// Encoded image bytes for people: size and, when they decode, the image's size.
fn describe_image(b: &[u8]) -> String {
    match crate::image_ops::decode_rgb(b) {
        Ok(img) => format!(
            "<{} bytes, image {}×{}>",
            b.len(),
            img.width(),
            img.height()
        ),
        Err(_) => format!("<{} bytes>", b.len()),
    }
}

fn sample_rows(batch: &RecordBatch, n: usize, dir: &Path) -> Vec<BTreeMap<String, String>> {
    let opts = FormatOptions::default().with_null("null");
    (0..batch.num_rows().min(n))
        .map(|row| {
            batch
                .schema()
                .fields()
                .iter()
                .zip(batch.columns())
                .map(|(f, col)| {
                    let shown = match f.data_type() {
                        // Image bytes, or a Hugging Face image struct's bytes (or file).
                        t if crate::column::is_image_type(t) => {
                            match ImageColumn::new(col, dir).map(|c| c.get(row)) {
                                Some(Ok(b)) => describe_image(&b),
                                _ => "null".into(),
                            }
                        }
                        DataType::List(f) | DataType::LargeList(f)
                            if matches!(
                                f.data_type(),
                                DataType::Binary | DataType::LargeBinary | DataType::BinaryView
                            ) =>
                        {
                            match frames_at(col, row) {
                                Some(frames) => {
                                    let first = frames
                                        .get(0)
                                        .and_then(|b| crate::image_ops::decode_rgb(b).ok())
                                        .map(|img| {
                                            format!(", first {}×{}", img.width(), img.height())
                                        })
                                        .unwrap_or_default();
                                    format!("<{} frames{first}>", frames.len())
                                }
                                None => "null".into(),
                            }
                        }
                        _ => ArrayFormatter::try_new(col.as_ref(), &opts)
                            .map(|fm| fm.value(row).to_string())
                            .unwrap_or_else(|e| format!("<{e}>")),
                    };
                    let short: String = shown.chars().take(80).collect();
                    (
                        f.name().clone(),
                        if short.len() < shown.len() {
                            format!("{short}…")
                        } else {
                            short
                        },
                    )
                })
                .collect()
        })
        .collect()
}

impl InspectReport {
    /// A human-readable summary.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "spec: {}\nshards: {}, rows: {}, bad rows: {}\ncolumns:\n",
            self.spec,
            self.shards.len(),
            self.total_rows,
            self.bad_count
        );
        if self.not_downloaded > 0 {
            s += &format!(
                "not downloaded (img2dataset status other than success, skipped): {}\n",
                self.not_downloaded
            );
        }
        for (n, t) in &self.columns {
            s += &format!("  {n}: {t}\n");
        }
        for sh in &self.shards {
            s += &format!(
                "{}: {} rows in {} row groups\n",
                sh.path.display(),
                sh.rows,
                sh.row_groups.len()
            );
        }
        for (i, row) in self.samples.iter().enumerate() {
            s += &format!("sample {i}:\n");
            for (k, v) in row {
                s += &format!("  {k}: {v}\n");
            }
        }
        for b in &self.bad_rows {
            s += &format!(
                "bad row: {} row group {} row {} column {}: {}\n",
                b.file.display(),
                b.row_group,
                b.row,
                b.column,
                b.reason
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{write_shapes, write_shapes_tasks, ShapesConfig};
    use arrow::array::BinaryArray;

    #[test]
    fn guesses_specs_summarises_and_finds_bad_images() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ShapesConfig {
            rows: 12,
            image_size: 16,
            max_objects: 1,
            rows_per_shard: 12,
            rows_per_group: 5,
            seed: 1,
        };
        let shapes = write_shapes(&dir.path().join("shapes"), &cfg).unwrap();
        let r = inspect(&shapes.shards, None, &BTreeMap::new(), 2, 10).unwrap();
        assert_eq!(
            (r.spec.as_str(), r.total_rows, r.bad_count),
            ("shapes", 12, 0)
        );
        assert_eq!(r.shards[0].row_groups, vec![5, 5, 2]);
        assert_eq!(r.samples.len(), 2);
        assert!(
            r.samples[0]["image"].contains("image 16×16"),
            "{:?}",
            r.samples[0]
        );
        let tasks = write_shapes_tasks(&dir.path().join("tasks"), &cfg).unwrap();
        for (task, shards, _) in &tasks.tasks {
            assert_eq!(
                inspect(shards, None, &Default::default(), 1, 1)
                    .unwrap()
                    .spec,
                task.name()
            );
        }
        // A webli-style shard with a corrupt image: reported with its location.
        let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("image", DataType::Binary, false),
            arrow::datatypes::Field::new("text", DataType::Utf8, false),
            arrow::datatypes::Field::new("lang", DataType::Utf8, false),
        ]));
        let good = crate::image_ops::encode_png(&image::RgbImage::new(4, 4)).unwrap();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                std::sync::Arc::new(BinaryArray::from_iter_values([good.as_slice(), b"junk"])),
                std::sync::Arc::new(arrow::array::StringArray::from_iter_values(["a", "b"])),
                std::sync::Arc::new(arrow::array::StringArray::from_iter_values(["en", "en"])),
            ],
        )
        .unwrap();
        let path = dir.path().join("w.parquet");
        let mut w = crate::shard_writer::ShardWriter::create(
            &path,
            schema,
            &crate::shard_writer::ShardFormat::new(10),
        )
        .unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
        let r = inspect(
            std::slice::from_ref(&path),
            None,
            &Default::default(),
            0,
            10,
        )
        .unwrap();
        assert_eq!((r.spec.as_str(), r.bad_count), ("webli", 1));
        assert_eq!(
            (
                r.bad_rows[0].row_group,
                r.bad_rows[0].row,
                r.bad_rows[0].column.as_str()
            ),
            (0, 1, "image")
        );
        // A spec the shard does not meet names the missing column.
        let e = inspect(
            &[path],
            Some(&DataSpec::embedded("vqa").unwrap()),
            &BTreeMap::new(),
            0,
            0,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("question"), "{e}");
    }
}
