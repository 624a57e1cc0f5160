//! A folder of images with a JSON-lines manifest (`{"image": relative path, "text": ...,
//! "lang": ..., "id": ...}` per line) to `webli` shards.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::json_entries::Id;
use super::pipeline::{write_jobs, Job};
use super::schemas::WebliRow;
use super::skips::{entry_error, Skips};
use super::writer::DatasetWriter;
use super::{ConvertConfig, ConvertSummary};
use crate::error::{DataError, Result};

/// Inputs of [`convert_jsonl`].
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct JsonlSource {
    /// The manifest: one JSON object per line; blank lines are ignored.
    #[arg(long)]
    pub manifest: PathBuf,
    /// The folder `image` paths are relative to (default: the manifest's folder).
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// Language for lines without `lang`.
    #[arg(long, default_value = "en")]
    pub lang: String,
}

#[derive(Deserialize)]
struct Line {
    image: String,
    text: String,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    id: Option<Id>,
}

/// One manifest line, waiting for its image.
struct LineJob {
    line: usize,
    path: PathBuf,
    row: WebliRow,
}

impl Job for LineJob {
    type Row = WebliRow;

    fn entry(&self) -> String {
        format!("line {}", self.line)
    }

    fn image_path(&self) -> &Path {
        &self.path
    }

    fn rows(&self, image: &[u8]) -> Vec<WebliRow> {
        vec![WebliRow {
            image: image.to_vec(),
            ..self.row.clone()
        }]
    }
}

/// Converts an image folder and its JSON-lines manifest to `webli` shards.
pub fn convert_jsonl(src: &JsonlSource, cfg: &ConvertConfig) -> Result<ConvertSummary> {
    let file = src.manifest.as_path();
    let images = match &src.images {
        Some(dir) => dir.clone(),
        None => file.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let reader = BufReader::new(File::open(file).map_err(|e| DataError::io(file, e))?);
    let mut writer = DatasetWriter::<WebliRow>::new(cfg)?;
    let mut skips = Skips::new(cfg.skip_missing);
    // Stream the manifest a row group at a time: it may list millions of images.
    let mut jobs = Vec::with_capacity(cfg.rows_per_group);
    for (i, line) in reader.lines().enumerate() {
        let number = i + 1;
        let line = line.map_err(|e| DataError::io(file, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<Line>(&line)
            .map_err(|e| entry_error(file, format!("line {number}"), e.to_string()));
        let Some(parsed) = skips.handle(parsed)? else {
            continue;
        };
        jobs.push(LineJob {
            line: number,
            path: images.join(&parsed.image),
            row: WebliRow {
                image: Vec::new(),
                text: parsed.text,
                lang: parsed.lang.unwrap_or_else(|| src.lang.clone()),
                id: parsed.id.map_or(parsed.image, |id| id.0),
            },
        });
        if jobs.len() == cfg.rows_per_group {
            write_jobs(&jobs, file, &mut writer, &mut skips)?;
            jobs.clear();
        }
    }
    write_jobs(&jobs, file, &mut writer, &mut skips)?;
    let rows = writer.rows();
    let shards = writer.finish(file)?;
    Ok(skips.summary(shards, rows))
}
