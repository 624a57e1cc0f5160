//! Decoding, resizing and tokenising rows in parallel, and assembling batches.

use std::collections::BTreeMap;
use std::sync::Arc;

use rayon::prelude::*;
use rayon::ThreadPool;

use super::source::{Media, Origin, RawRow};
use super::Batch;
use crate::error::{DataError, Result};
use crate::image_ops::{decode_rgb, to_model_input, to_model_input_with};
use crate::tokenizer::TextTokenizer;

/// A row ready to go into a batch.
pub(crate) struct Sample {
    pixels: Vec<f32>,
    input_ids: Vec<i64>,
    target_ids: Vec<i64>,
    id: String,
    text: String,
    target: String,
    references: Vec<String>,
    target_box: Option<crate::loc::NormBox>,
    labels: Vec<String>,
}

/// Turns raw rows into samples on a dedicated thread pool.
pub(crate) struct Prep {
    pool: ThreadPool,
    tokenizer: Arc<TextTokenizer>,
    pub image_size: usize,
    /// Frames per sample: 1 for images, the most frames of a clip for video.
    pub frames: usize,
    pub text_len: usize,
    pub target_len: usize,
    /// Training augmentation, keyed by `seed`.
    pub augment: Option<(crate::augment::Augment, u64)>,
}

impl Prep {
    /// Builds the pool; `threads` 0 means one per core.
    pub(crate) fn new(
        threads: usize,
        tokenizer: Arc<TextTokenizer>,
        image_size: usize,
        text_len: usize,
        target_len: usize,
    ) -> Result<Prep> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("palisade-data-{i}"))
            .build()
            .map_err(|e| {
                DataError::config("threads", format!("cannot start {threads} threads: {e}"))
            })?;
        Ok(Prep {
            pool,
            tokenizer,
            image_size,
            frames: 1,
            text_len,
            target_len,
            augment: None,
        })
    }

    /// Processes rows in parallel, keeping their order; failures carry the reason.
    pub(crate) fn run(
        &self,
        rows: Vec<RawRow>,
    ) -> Vec<(Origin, std::result::Result<Sample, String>)> {
        self.pool.install(|| {
            rows.into_par_iter()
                .map(|row| {
                    (
                        row.origin,
                        row.fields.and_then(|f| self.sample(f, row.epoch)),
                    )
                })
                .collect()
        })
    }

    fn sample(
        &self,
        f: super::source::RawFields,
        epoch: u64,
    ) -> std::result::Result<Sample, String> {
        let pixels = self.pixels(&f.media, &f.id, epoch)?;
        let input_ids = self
            .tokenizer
            .encode_fixed(&f.text, self.text_len)
            .map_err(|e| e.to_string())?;
        let (target_ids, target) = match f.target {
            Some(t) => (self.target_ids(&t)?, t),
            None => (Vec::new(), String::new()),
        };
        Ok(Sample {
            pixels,
            input_ids,
            target_ids,
            id: f.id,
            text: f.text,
            target,
            references: f.references,
            target_box: f.target_box,
            labels: f.labels,
        })
    }

    /// Decoded, augmented, resized and normalised pixels of one sample: `frames` planes of
    /// `3 × S × S`; a clip shorter than `frames` repeats its last frame.
    fn pixels(&self, media: &Media, id: &str, epoch: u64) -> std::result::Result<Vec<f32>, String> {
        let plane = 3 * self.image_size * self.image_size;
        let mut pixels = vec![0.0; self.frames * plane];
        let (frames, clip) = match media {
            Media::Image(bytes) => (vec![(0, bytes.as_slice())], false),
            Media::Frames(f) => (f.iter().map(|(i, b)| (*i, b.as_slice())).collect(), true),
        };
        // One augmentation draw per row, from its first frame's size: a clip's frames share it.
        let mut draw = None;
        for (k, (index, bytes)) in frames.iter().enumerate().take(self.frames) {
            let img = decode_rgb(bytes).map_err(|e| match clip {
                true => format!("column \"frames\": frame {index}: {e}"),
                false => e.to_string(),
            })?;
            let out = &mut pixels[k * plane..(k + 1) * plane];
            match &self.augment {
                Some((a, seed)) => {
                    let d = *draw
                        .get_or_insert_with(|| a.draw(img.width(), img.height(), *seed, epoch, id));
                    to_model_input_with(&d.apply(&img), self.image_size, out, a.resize)
                }
                None => to_model_input(&img, self.image_size, out),
            }
        }
        let used = frames.len().min(self.frames);
        if used == 0 {
            return Err("no frames".into());
        }
        for k in used..self.frames {
            pixels.copy_within((used - 1) * plane..used * plane, k * plane);
        }
        Ok(pixels)
    }

    /// Target token ids with EOS, `target_len` long, −100 after EOS (ignored by the loss).
    fn target_ids(&self, target: &str) -> std::result::Result<Vec<i64>, String> {
        let n = self
            .tokenizer
            .encode(target)
            .map_err(|e| e.to_string())?
            .len()
            + 1;
        let mut ids = self
            .tokenizer
            .encode_fixed(target, self.target_len)
            .map_err(|e| e.to_string())?;
        for id in ids.iter_mut().skip(n) {
            *id = -100;
        }
        Ok(ids)
    }
}

/// Accumulates samples into a [`Batch`].
pub(crate) struct BatchBuilder {
    batch: Batch,
    label_names: Vec<String>,
}

impl BatchBuilder {
    pub(crate) fn new(capacity: usize, prep: &Prep, label_names: &[String]) -> BatchBuilder {
        let plane = prep.frames * 3 * prep.image_size * prep.image_size;
        BatchBuilder {
            batch: Batch {
                size: 0,
                image_size: prep.image_size,
                frames: prep.frames,
                pixels: Vec::with_capacity(capacity * plane),
                text_len: prep.text_len,
                input_ids: Vec::with_capacity(capacity * prep.text_len),
                target_len: prep.target_len,
                target_ids: Vec::with_capacity(capacity * prep.target_len),
                targets: Vec::with_capacity(capacity),
                references: Vec::with_capacity(capacity),
                target_boxes: Vec::with_capacity(capacity),
                ids: Vec::with_capacity(capacity),
                texts: Vec::with_capacity(capacity),
                labels: label_names
                    .iter()
                    .map(|n| (n.clone(), Vec::with_capacity(capacity)))
                    .collect::<BTreeMap<_, _>>(),
                skipped: 0,
            },
            label_names: label_names.to_vec(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.batch.size
    }

    pub(crate) fn push(&mut self, s: Sample) {
        let b = &mut self.batch;
        b.size += 1;
        b.pixels.extend_from_slice(&s.pixels);
        b.input_ids.extend_from_slice(&s.input_ids);
        b.target_ids.extend_from_slice(&s.target_ids);
        b.targets.push(s.target);
        b.references.push(s.references);
        b.target_boxes.push(s.target_box);
        b.ids.push(s.id);
        b.texts.push(s.text);
        for (name, value) in self.label_names.iter().zip(s.labels) {
            if let Some(col) = b.labels.get_mut(name) {
                col.push(value);
            }
        }
    }

    pub(crate) fn skip(&mut self) {
        self.batch.skipped += 1;
    }

    pub(crate) fn skipped(&self) -> usize {
        self.batch.skipped
    }

    pub(crate) fn finish(self) -> Batch {
        self.batch
    }
}
