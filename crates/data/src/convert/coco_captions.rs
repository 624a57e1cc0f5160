//! COCO captions (`captions_*.json` + an image folder) to `caption` shards: one row per image
//! with all of its captions, in the order of the file's `images` and `annotations`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::json_entries::{parse_entry, parse_top, read_file, Id};
use super::pipeline::{write_jobs, Job};
use super::schemas::CaptionRow;
use super::skips::{entry_error, Skips};
use super::writer::DatasetWriter;
use super::{ConvertConfig, ConvertSummary};
use crate::error::Result;

/// Inputs of [`convert_coco_captions`].
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct CocoCaptionsSource {
    /// A `captions_{train,val}YEAR.json` annotation file.
    #[arg(long)]
    pub annotations: PathBuf,
    /// The folder holding the images its `file_name`s name.
    #[arg(long)]
    pub images: PathBuf,
    /// Language of the captions, stored in `lang`.
    #[arg(long, default_value = "en")]
    pub lang: String,
}

#[derive(Deserialize)]
struct Top<'a> {
    #[serde(borrow)]
    images: Vec<&'a RawValue>,
    #[serde(borrow)]
    annotations: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct ImageEntry {
    id: Id,
    file_name: String,
}

#[derive(Deserialize)]
struct CaptionEntry {
    image_id: Id,
    caption: String,
}

/// One image with its captions, waiting for its bytes.
struct CaptionJob {
    index: usize,
    image_id: Id,
    path: PathBuf,
    captions: Vec<String>,
    lang: String,
}

impl Job for CaptionJob {
    type Row = CaptionRow;

    fn entry(&self) -> String {
        format!("images[{}] (id {})", self.index, self.image_id)
    }

    fn image_path(&self) -> &Path {
        &self.path
    }

    fn rows(&self, image: &[u8]) -> Vec<CaptionRow> {
        vec![CaptionRow {
            image: image.to_vec(),
            captions: self.captions.clone(),
            lang: self.lang.clone(),
            image_id: self.image_id.0.clone(),
        }]
    }
}

/// Converts COCO captions to `caption` shards.
pub fn convert_coco_captions(
    src: &CocoCaptionsSource,
    cfg: &ConvertConfig,
) -> Result<ConvertSummary> {
    let file = src.annotations.as_path();
    let bytes = read_file(file)?;
    let top: Top = parse_top(file, &bytes)?;
    let mut skips = Skips::new(cfg.skip_missing);
    let mut jobs: Vec<CaptionJob> = Vec::with_capacity(top.images.len());
    let mut by_id: HashMap<Id, usize> = HashMap::with_capacity(top.images.len());
    for (index, raw) in top.images.iter().enumerate() {
        let Some(img) = skips.handle(parse_entry::<ImageEntry>(file, "images", index, raw))? else {
            continue;
        };
        if let Some(&first) = by_id.get(&img.id) {
            let err = entry_error(
                file,
                format!("images[{index}] (id {})", img.id),
                format!("repeats the id of images[{}]", jobs[first].index),
            );
            skips.handle::<()>(Err(err))?;
            continue;
        }
        by_id.insert(img.id.clone(), jobs.len());
        jobs.push(CaptionJob {
            index,
            path: src.images.join(&img.file_name),
            image_id: img.id,
            captions: Vec::new(),
            lang: src.lang.clone(),
        });
    }
    for (index, raw) in top.annotations.iter().enumerate() {
        let parsed = parse_entry::<CaptionEntry>(file, "annotations", index, raw);
        let Some(ann) = skips.handle(parsed)? else {
            continue;
        };
        match by_id.get(&ann.image_id) {
            Some(&j) => jobs[j].captions.push(ann.caption),
            None => {
                let err = entry_error(
                    file,
                    format!("annotations[{index}]"),
                    format!("image_id {} is not among the images", ann.image_id),
                );
                skips.handle::<()>(Err(err))?;
            }
        }
    }
    let mut ready = Vec::with_capacity(jobs.len());
    for job in jobs {
        if job.captions.is_empty() {
            skips.handle::<()>(Err(entry_error(file, job.entry(), "has no captions")))?;
        } else {
            ready.push(job);
        }
    }
    let mut writer = DatasetWriter::<CaptionRow>::new(cfg)?;
    for chunk in ready.chunks(cfg.rows_per_group) {
        write_jobs(chunk, file, &mut writer, &mut skips)?;
    }
    let rows = writer.rows();
    let shards = writer.finish(file)?;
    Ok(skips.summary(shards, rows))
}
