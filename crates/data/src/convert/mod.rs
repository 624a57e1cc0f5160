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

use std::path::PathBuf;

pub use coco_captions::{convert_coco_captions, CocoCaptionsSource};
pub use jsonl::{convert_jsonl, JsonlSource};
pub use refcoco::{convert_refcoco, ExpressionField, RefcocoSource};
pub use schemas::{caption_schema, refcoco_schema, vqa_schema, webli_schema};
pub use vqa::{convert_vqa, VqaSource};
pub use webdataset::{convert_webdataset, WebdatasetSource};

use crate::error::{DataError, Result};

/// Where and how converted shards are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertConfig {
    /// Output folder; created if absent, must not already hold `PREFIX-*.parquet` files.
    pub out_dir: PathBuf,
    /// File name prefix of the shards.
    pub prefix: String,
    /// Rows per Parquet file.
    pub rows_per_shard: usize,
    /// Rows per row group (the loader holds one row group in memory).
    pub rows_per_group: usize,
    /// Count and skip missing images and malformed entries instead of stopping.
    pub skip_missing: bool,
}

impl ConvertConfig {
    /// A config with the default shard and row-group sizes.
    pub fn new(out_dir: impl Into<PathBuf>, prefix: &str) -> ConvertConfig {
        ConvertConfig {
            out_dir: out_dir.into(),
            prefix: prefix.to_string(),
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
        if self.prefix.is_empty() || self.prefix.starts_with('.') || self.prefix.contains(bad) {
            return Err(DataError::config(
                "prefix",
                format!(
                    "{:?} must be a non-empty file name part without '/' or a leading '.'",
                    self.prefix
                ),
            ));
        }
        Ok(())
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
                    prefix: "a/b".into(),
                    ..ok.clone()
                },
                "prefix",
            ),
            (
                ConvertConfig {
                    prefix: ".hidden".into(),
                    ..ok.clone()
                },
                "prefix",
            ),
            (
                ConvertConfig {
                    prefix: String::new(),
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
