//! RefCOCO / RefCOCO+ / RefCOCOg (`refs(*).p` + `instances.json` + COCO image folder) to
//! `refcoco` shards: one row per sentence of each ref, with its object's box and the split.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::json_entries::{parse_entry, parse_top, read_file, Id};
use super::pipeline::{write_jobs, Job};
use super::refcoco_pickle::{read_refs, Ref};
use super::schemas::RefcocoRow;
use super::skips::{entry_error, Skips};
use super::writer::DatasetWriter;
use super::{ConvertConfig, ConvertSummary};
use crate::error::{DataError, Result};

/// Which text of a sentence becomes `expression`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ExpressionField {
    /// `sent`: lower-cased and tokenised (what the refer toolkit and most papers use).
    #[default]
    Sent,
    /// `raw`: as the annotator typed it.
    Raw,
}

/// Inputs of [`convert_refcoco`].
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct RefcocoSource {
    /// `refs(unc).p`, `refs(umd).p` or `refs(google).p`.
    #[arg(long)]
    pub refs: PathBuf,
    /// The dataset's `instances.json` (COCO images and boxes).
    #[arg(long)]
    pub instances: PathBuf,
    /// The COCO image folder (`train2014/`).
    #[arg(long)]
    pub images: PathBuf,
    /// Keep only refs of this split (`train`, `val`, `test`, `testA`, `testB`).
    #[arg(long)]
    pub split: Option<String>,
    /// Which sentence text to store.
    #[arg(long, value_enum, default_value_t = ExpressionField::Sent)]
    pub expression: ExpressionField,
    /// Language of the expressions.
    #[arg(long, default_value = "en")]
    pub lang: String,
}

#[derive(Deserialize)]
struct InstancesTop<'a> {
    #[serde(borrow)]
    images: Vec<&'a RawValue>,
    #[serde(borrow)]
    annotations: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct ImageEntry {
    id: Id,
    file_name: String,
    width: u32,
    height: u32,
}

#[derive(Deserialize)]
struct AnnotationEntry {
    id: Id,
    image_id: Id,
    bbox: Vec<f64>,
}

/// An annotation's box and image, checked.
struct Object {
    image_id: Id,
    bbox: [f64; 4],
}

/// One ref with its sentences, waiting for its image.
struct RefJob {
    index: usize,
    path: PathBuf,
    /// One row per sentence, images still empty.
    rows: Vec<RefcocoRow>,
}

impl Job for RefJob {
    type Row = RefcocoRow;

    fn entry(&self) -> String {
        let ref_id = self.rows.first().map(|r| r.ref_id.as_str()).unwrap_or("?");
        format!("refs[{}] (ref_id {ref_id})", self.index)
    }

    fn image_path(&self) -> &Path {
        &self.path
    }

    fn rows(&self, image: &[u8]) -> Vec<RefcocoRow> {
        self.rows
            .iter()
            .map(|r| RefcocoRow {
                image: image.to_vec(),
                ..r.clone()
            })
            .collect()
    }
}

/// Converts RefCOCO-family refs to `refcoco` shards.
pub fn convert_refcoco(src: &RefcocoSource, cfg: &ConvertConfig) -> Result<ConvertSummary> {
    let mut skips = Skips::new(cfg.skip_missing);
    let (images, objects) = read_instances(&src.instances, &mut skips)?;
    let refs = read_refs(&src.refs)?;
    let mut splits = BTreeSet::new();
    let mut jobs = Vec::new();
    for (index, parsed) in refs.into_iter().enumerate() {
        let Some(r) = skips.handle(parsed)? else {
            continue;
        };
        splits.insert(r.split.clone());
        if src.split.as_ref().is_some_and(|s| *s != r.split) {
            continue;
        }
        let entry = format!("refs[{index}] (ref_id {})", r.ref_id);
        let job = make_job(index, &r, &images, &objects, src)
            .map_err(|m| entry_error(&src.refs, entry, m));
        if let Some(job) = skips.handle(job)? {
            jobs.push(job);
        }
    }
    if let (Some(split), true) = (&src.split, jobs.is_empty()) {
        return Err(DataError::NoRows {
            input: src.refs.clone(),
            message: format!(
                "no usable ref has split {split:?} (splits present: {})",
                splits.into_iter().collect::<Vec<_>>().join(", ")
            ),
        });
    }
    let mut writer = DatasetWriter::<RefcocoRow>::new(cfg)?;
    // Refs average about two sentences: half a row group of refs is about one row group.
    for chunk in jobs.chunks(cfg.rows_per_group.div_ceil(2).max(1)) {
        write_jobs(chunk, &src.refs, &mut writer, &mut skips)?;
    }
    let rows = writer.rows();
    let shards = writer.finish(&src.refs)?;
    Ok(skips.summary(shards, rows))
}

type Images = HashMap<Id, ImageEntry>;
type Objects = HashMap<Id, Object>;

fn read_instances(file: &Path, skips: &mut Skips) -> Result<(Images, Objects)> {
    let bytes = read_file(file)?;
    let top: InstancesTop = parse_top(file, &bytes)?;
    let mut images = HashMap::with_capacity(top.images.len());
    for (index, raw) in top.images.iter().enumerate() {
        if let Some(img) = skips.handle(parse_entry::<ImageEntry>(file, "images", index, raw))? {
            images.insert(img.id.clone(), img);
        }
    }
    let mut objects = HashMap::with_capacity(top.annotations.len());
    for (index, raw) in top.annotations.iter().enumerate() {
        let parsed = parse_entry::<AnnotationEntry>(file, "annotations", index, raw);
        let Some(ann) = skips.handle(parsed)? else {
            continue;
        };
        let bbox = match <[f64; 4]>::try_from(ann.bbox.as_slice()) {
            Ok(b) if b.iter().all(|v| v.is_finite()) && b[2] >= 0.0 && b[3] >= 0.0 => b,
            _ => {
                let err = entry_error(
                    file,
                    format!("annotations[{index}] (id {})", ann.id),
                    format!("bbox {:?} is not [x, y, w, h] with w, h >= 0", ann.bbox),
                );
                skips.handle::<()>(Err(err))?;
                continue;
            }
        };
        objects.insert(
            ann.id,
            Object {
                image_id: ann.image_id,
                bbox,
            },
        );
    }
    Ok((images, objects))
}

fn make_job(
    index: usize,
    r: &Ref,
    images: &Images,
    objects: &Objects,
    src: &RefcocoSource,
) -> std::result::Result<RefJob, String> {
    let image_id = Id(r.image_id.to_string());
    let obj = objects
        .get(&Id(r.ann_id.to_string()))
        .ok_or_else(|| format!("ann_id {} is not in {}", r.ann_id, src.instances.display()))?;
    if obj.image_id != image_id {
        return Err(format!(
            "image_id {} but its annotation {} is on image {}",
            r.image_id, r.ann_id, obj.image_id
        ));
    }
    let img = images.get(&image_id).ok_or_else(|| {
        format!(
            "image_id {} is not in {}",
            r.image_id,
            src.instances.display()
        )
    })?;
    let side = |v: u32, name: &str| {
        i32::try_from(v)
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| format!("image {} has {name} {v}", r.image_id))
    };
    let (width, height) = (side(img.width, "width")?, side(img.height, "height")?);
    if r.sentences.is_empty() {
        return Err("has no sentences".into());
    }
    let rows = r
        .sentences
        .iter()
        .map(|s| RefcocoRow {
            image: Vec::new(),
            expression: match src.expression {
                ExpressionField::Sent => s.sent.clone(),
                ExpressionField::Raw => s.raw.clone(),
            },
            bbox: obj.bbox,
            width,
            height,
            ref_id: r.ref_id.to_string(),
            sent_id: s.sent_id.to_string(),
            split: r.split.clone(),
            image_id: image_id.0.clone(),
            lang: src.lang.clone(),
        })
        .collect();
    Ok(RefJob {
        index,
        path: src.images.join(&img.file_name),
        rows,
    })
}
