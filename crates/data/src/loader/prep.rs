//! Decoding, resizing and tokenising rows in parallel, and assembling batches.
//!
//! Each row's pixels are written straight into its slot of the batch's pixel buffer, and each
//! decode thread reuses its decode and resize buffers, so a sample costs no allocation of its
//! own: fresh memory costs page faults, which were a fifth of the loader's time.

use std::collections::BTreeMap;
use std::sync::Arc;

use rayon::prelude::*;
use rayon::ThreadPool;

use super::source::{Media, Origin, RawRow};
use super::Batch;
use crate::error::{DataError, Result};
use crate::image_ops::Filter;
use crate::image_ops::{decode_rgb_for, decode_rgb_into, rgb_to_model_input, to_model_input_with};
use crate::tokenizer::TextTokenizer;

/// A row ready to go into a batch (its pixels are already in the batch's buffer).
pub(crate) struct Sample {
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

    /// Values per sample in the batch's pixel buffer.
    pub(crate) fn slot(&self) -> usize {
        self.frames * 3 * self.image_size * self.image_size
    }

    /// Processes rows in parallel, keeping their order, each writing its pixels into its slot of
    /// `pixels` (`rows.len()` slots); failures carry the reason.
    pub(crate) fn run(
        &self,
        rows: Vec<RawRow>,
        pixels: &mut [f32],
    ) -> Vec<(Origin, std::result::Result<Sample, String>)> {
        let slot = self.slot();
        let one = |(row, out): (RawRow, &mut [f32])| {
            (
                row.origin,
                row.fields.and_then(|f| self.sample(f, row.epoch, out)),
            )
        };
        if self.pool.current_num_threads() == 1 {
            // One thread: stay on the caller's, with its warm caches, instead of handing every
            // batch to a second thread (and core) and waiting for it.
            return rows
                .into_iter()
                .zip(pixels.chunks_mut(slot))
                .map(one)
                .collect();
        }
        self.pool.install(|| {
            rows.into_par_iter()
                .zip(pixels.par_chunks_mut(slot))
                .map(one)
                .collect()
        })
    }

    fn sample(
        &self,
        f: super::source::RawFields,
        epoch: u64,
        pixels: &mut [f32],
    ) -> std::result::Result<Sample, String> {
        let t = f.texts;
        self.pixels(&f.media, &t.id, epoch, pixels)?;
        let input_ids = self
            .tokenizer
            .encode_fixed(&t.text, self.text_len)
            .map_err(|e| e.to_string())?;
        let (target_ids, target) = match t.target {
            Some(t) => (self.target_ids(&t)?, t),
            None => (Vec::new(), String::new()),
        };
        Ok(Sample {
            input_ids,
            target_ids,
            id: t.id,
            text: t.text,
            target,
            references: t.references,
            target_box: t.target_box,
            labels: t.labels,
        })
    }

    /// Writes one sample's decoded, augmented, resized and normalised pixels into `pixels`:
    /// `frames` planes of `3 × S × S`; a clip shorter than `frames` repeats its last frame.
    fn pixels(
        &self,
        media: &Media,
        id: &str,
        epoch: u64,
        pixels: &mut [f32],
    ) -> std::result::Result<(), String> {
        let plane = 3 * self.image_size * self.image_size;
        let side = self.image_size as u32;
        let (frames, clip) = match media {
            Media::Image(bytes) => (vec![(0, bytes.as_slice())], false),
            Media::Frames(f) => (f.iter().map(|(i, b)| (*i, b.as_slice())).collect(), true),
        };
        let name = |index: usize, e: crate::DataError| match clip {
            true => format!("column \"frames\": frame {index}: {e}"),
            false => e.to_string(),
        };
        // One augmentation draw per row, from its first frame's size: a clip's frames share it.
        let mut draw = None;
        for (k, (index, bytes)) in frames.iter().enumerate().take(self.frames) {
            let out = &mut pixels[k * plane..(k + 1) * plane];
            match &self.augment {
                Some((a, seed)) => {
                    // A random crop may be small: decode at full size so it is never upsampled
                    // from a reduced decode.
                    let at = if a.crop_scale.is_some() { 0 } else { side };
                    let img = decode_rgb_for(bytes, at).map_err(|e| name(*index, e))?;
                    let d = *draw
                        .get_or_insert_with(|| a.draw(img.width(), img.height(), *seed, epoch, id));
                    to_model_input_with(&d.apply(&img), self.image_size, out, a.resize)
                }
                None => DECODED.with(|buf| {
                    let mut buf = buf.borrow_mut();
                    let (w, h) =
                        decode_rgb_into(bytes, side, &mut buf).map_err(|e| name(*index, e))?;
                    rgb_to_model_input(&buf, w, h, self.image_size, out, Filter::Bilinear);
                    Ok::<_, String>(())
                })?,
            }
        }
        let used = frames.len().min(self.frames);
        if used == 0 {
            return Err("no frames".into());
        }
        for k in used..self.frames {
            pixels.copy_within((used - 1) * plane..used * plane, k * plane);
        }
        Ok(())
    }

    /// Target token ids with EOS, `target_len` long, −100 after EOS (ignored by the loss).
    fn target_ids(&self, target: &str) -> std::result::Result<Vec<i64>, String> {
        let mut ids = self
            .tokenizer
            .encode_for_model(target, Some(self.target_len))
            .map_err(|e| e.to_string())?;
        ids.resize(self.target_len, -100);
        Ok(ids)
    }
}

thread_local! {
    /// Each decode thread's decoded image, reused from one image to the next.
    static DECODED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `n` zeros, asking Linux to back them with transparent huge pages. A batch is tens of MB of
/// fresh memory: faulting it in 4 KiB at a time cost more than resizing the images. The zeros
/// come from `calloc`, whose large blocks are fresh mappings the kernel zeroes on first touch,
/// so the pages are first touched — in parallel — by the decode threads writing their samples.
/// Huge pages are only advice: where they are off, nothing changes.
fn huge_page_zeros(n: usize) -> Vec<f32> {
    let v: Vec<f32> = vec![0.0; n];
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = v.as_ptr() as usize;
        let end = start + v.len() * std::mem::size_of::<f32>();
        let (first, last) = (start.next_multiple_of(HUGE), end / HUGE * HUGE);
        if last > first {
            // SAFETY: the range lies inside the vector's own allocation; MADV_HUGEPAGE changes
            // only how the kernel backs the pages, never their contents or the mapping.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    last - first,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    v
}

/// Accumulates samples into a [`Batch`].
pub(crate) struct BatchBuilder {
    batch: Batch,
    label_names: Vec<String>,
    /// Values per sample in `batch.pixels`.
    slot: usize,
}

impl BatchBuilder {
    pub(crate) fn new(capacity: usize, prep: &Prep, label_names: &[String]) -> BatchBuilder {
        let plane = prep.slot();
        // Every slot up front; `finish` cuts it to the samples accepted.
        let pixels = huge_page_zeros(capacity * plane);
        BatchBuilder {
            batch: Batch {
                size: 0,
                image_size: prep.image_size,
                frames: prep.frames,
                pixels,
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
            slot: plane,
        }
    }

    /// Room for `n` more samples' pixels after the accepted ones, for [`Prep::run`].
    pub(crate) fn pixel_slots(&mut self, n: usize) -> &mut [f32] {
        let start = self.batch.size * self.slot;
        let end = start + n * self.slot;
        if self.batch.pixels.len() < end {
            self.batch.pixels.resize(end, 0.0);
        }
        &mut self.batch.pixels[start..end]
    }

    /// Keeps the pixel slots of the rows that `ok` marks (of the last [`Self::pixel_slots`]),
    /// closing the gaps of failed rows; call before pushing those rows' samples.
    pub(crate) fn keep_slots(&mut self, ok: &[bool]) {
        let slot = self.slot;
        let mut write = self.batch.size;
        for (k, &good) in ok.iter().enumerate() {
            let read = self.batch.size + k;
            if good {
                if write != read {
                    self.batch
                        .pixels
                        .copy_within(read * slot..(read + 1) * slot, write * slot);
                }
                write += 1;
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.batch.size
    }

    pub(crate) fn push(&mut self, s: Sample) {
        let b = &mut self.batch;
        b.size += 1;
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

    pub(crate) fn finish(mut self) -> Batch {
        self.batch.pixels.truncate(self.batch.size * self.slot);
        self.batch
    }
}
