//! Converters from public dataset formats (COCO captions, VQAv2, RefCOCO, webdataset tars,
//! JSON-lines manifests) to palisade's Parquet shards.
//!
//! Every converter streams entries into a `DatasetWriter` (`writer.rs`): row groups of
//! `rows_per_group`, zstd, written under hidden temporary names and renamed to
//! `PREFIX-XXXXX-of-NNNNN.parquet` only once the whole conversion succeeded. Images keep their
//! original bytes. A missing image or malformed entry stops the conversion with an error naming
//! the file and entry, unless `skip_missing` counts and skips it.

mod coco_captions;
mod image_file;
mod json_entries;
mod jsonl;
mod pipeline;
mod refcoco;
mod refcoco_pickle;
mod schemas;
mod skips;
mod vqa;
mod webdataset;
mod writer;

use std::path::{Path, PathBuf};

pub use coco_captions::{convert_coco_captions, CocoCaptionsSource};
pub use jsonl::{convert_jsonl, JsonlSource};
pub use refcoco::{convert_refcoco, ExpressionField, RefcocoSource};
pub use schemas::{caption_schema, refcoco_schema, vqa_schema, webli_schema};
pub use vqa::{convert_vqa, VqaSource};
pub use webdataset::{convert_webdataset, WebdatasetSource};

use crate::error::{DataError, Result};

/// Where and how converted shards are written.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ConvertConfig {
    /// Output folder for the shards; created if absent, must not already hold `PREFIX-*.parquet`.
    #[arg(long = "out", value_name = "OUT")]
    pub out_dir: PathBuf,
    /// Shard file prefix: PREFIX-XXXXX-of-NNNNN.parquet (default: the spec name).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Rows per Parquet file.
    #[arg(long, default_value_t = 4096)]
    pub rows_per_shard: usize,
    /// Rows per row group (the loader holds one row group in memory).
    #[arg(long, default_value_t = 256)]
    pub rows_per_group: usize,
    /// Count and skip missing images and malformed entries instead of stopping.
    #[arg(long)]
    pub skip_missing: bool,
}

impl ConvertConfig {
    /// A config with the default shard and row-group sizes.
    pub fn new(out_dir: impl Into<PathBuf>, prefix: &str) -> ConvertConfig {
        ConvertConfig {
            out_dir: out_dir.into(),
            prefix: Some(prefix.to_string()),
            rows_per_shard: 4096,
            rows_per_group: 256,
            skip_missing: false,
        }
    }

    /// Checks every field is in range.
    pub fn validate(&self) -> Result<()> {
        if self.rows_per_shard == 0 {
            return Err(DataError::config("rows_per_shard", "must be at least 1"));
        }
        if self.rows_per_group == 0 {
            return Err(DataError::config("rows_per_group", "must be at least 1"));
        }
        let bad = |c: char| c == '/' || c == '\\' || c.is_control();
        if let Some(p) = &self.prefix {
            if p.is_empty() || p.starts_with('.') || p.contains(bad) {
                return Err(DataError::config(
                    "prefix",
                    format!(
                        "{p:?} must be a non-empty file name part without '/' or a leading '.'"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A conversion: a public dataset's files to shards of a palisade spec (`palisade data convert`).
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Conversion {
    /// COCO captions (`captions_*.json` + image folder) to `caption` shards, one row per image.
    CocoCaptions {
        #[command(flatten)]
        source: CocoCaptionsSource,
        #[command(flatten)]
        out: ConvertConfig,
    },
    /// VQAv2 (questions + annotations JSON + COCO images) to `vqa` shards, one row per question.
    Vqa {
        #[command(flatten)]
        source: VqaSource,
        #[command(flatten)]
        out: ConvertConfig,
    },
    /// RefCOCO/RefCOCO+/RefCOCOg (`refs(*).p` + instances.json + COCO images) to `refcoco`
    /// shards, one row per sentence.
    Refcoco {
        #[command(flatten)]
        source: RefcocoSource,
        #[command(flatten)]
        out: ConvertConfig,
    },
    /// webdataset tars (`KEY.jpg|png|webp` + `KEY.txt`, optional `KEY.json`) to `webli` shards.
    Webdataset {
        #[command(flatten)]
        source: WebdatasetSource,
        #[command(flatten)]
        out: ConvertConfig,
    },
    /// A folder of images with a JSON-lines manifest (`{"image", "text", "lang"?, "id"?}`) to
    /// `webli` shards.
    Jsonl {
        #[command(flatten)]
        source: JsonlSource,
        #[command(flatten)]
        out: ConvertConfig,
    },
}

impl Conversion {
    /// Runs the conversion; returns the spec its shards follow and what it wrote.
    pub fn run(&self) -> Result<(&'static str, ConvertSummary)> {
        Ok(match self {
            Conversion::CocoCaptions { source, out } => {
                ("caption", convert_coco_captions(source, out)?)
            }
            Conversion::Vqa { source, out } => ("vqa", convert_vqa(source, out)?),
            Conversion::Refcoco { source, out } => ("refcoco", convert_refcoco(source, out)?),
            Conversion::Webdataset { source, out } => ("webli", convert_webdataset(source, out)?),
            Conversion::Jsonl { source, out } => ("webli", convert_jsonl(source, out)?),
        })
    }

    /// Where the shards go.
    pub fn out_dir(&self) -> &Path {
        match self {
            Conversion::CocoCaptions { out, .. }
            | Conversion::Vqa { out, .. }
            | Conversion::Refcoco { out, .. }
            | Conversion::Webdataset { out, .. }
            | Conversion::Jsonl { out, .. } => &out.out_dir,
        }
    }
}

impl ConvertSummary {
    /// What was written (shards of `spec` in `out`) and skipped, for people.
    pub fn describe(&self, spec: &str, out: &Path) -> String {
        let mut text = format!(
            "wrote {} rows in {} shards (spec {spec}) to {}",
            self.rows,
            self.shards.len(),
            out.display()
        );
        if self.skipped > 0 {
            text += &format!("\nskipped {} entries (--skip-missing), e.g.:", self.skipped);
            for example in &self.skipped_examples {
                text += &format!("\n  {example}");
            }
        }
        text
    }
}

/// What a conversion produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertSummary {
    /// The shard files, in order.
    pub shards: Vec<PathBuf>,
    /// Rows written over all shards.
    pub rows: usize,
    /// Entries skipped under `skip_missing`.
    pub skipped: usize,
    /// The first few skip reasons, each naming its file and entry.
    pub skipped_examples: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_rejects_zero_sizes_and_path_prefixes() {
        let ok = ConvertConfig::new("/tmp/x", "coco-val");
        ok.validate().unwrap();
        for (bad, key) in [
            (
                ConvertConfig {
                    rows_per_shard: 0,
                    ..ok.clone()
                },
                "rows_per_shard",
            ),
            (
                ConvertConfig {
                    rows_per_group: 0,
                    ..ok.clone()
                },
                "rows_per_group",
            ),
            (
                ConvertConfig {
                    prefix: Some("a/b".into()),
                    ..ok.clone()
                },
                "prefix",
            ),
            (
                ConvertConfig {
                    prefix: Some(".hidden".into()),
                    ..ok.clone()
                },
                "prefix",
            ),
            (
                ConvertConfig {
                    prefix: Some(String::new()),
                    ..ok.clone()
                },
                "prefix",
            ),
        ] {
            let err = bad.validate().unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }
}
