//! Streaming loader: shuffled, sharded across ranks, resumable, one row group in memory.
//!
//! The unit of work is a (shard, row group). Each epoch the units are permuted from
//! (seed, epoch), rank `r` of `world` takes every `world`-th unit from position `r`, and the
//! rows inside a unit are permuted from (seed, epoch, unit). A [`Cursor`] names the next
//! row exactly, so [`Loader::seek`] resumes bit-for-bit.
//!
//! A loader reads video rows when its spec has a `frames` column (`data_specs/video.yaml`): each
//! sample is then a clip of exactly [`Loader::frames`] frames (see `frames.rs`).

mod format;
mod frames;
mod plan;
mod prep;
mod shuffle;
mod source;
mod stream;
mod texts;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

pub use format::RowFormat;
pub use frames::DEFAULT_MAX_FRAMES;
pub use plan::{Cursor, Shuffled, Span};
pub use source::{FRAMES_COLUMN, ID_COLUMN, IMAGE_COLUMN, STATUS_COLUMN, STATUS_OK, TEXT_COLUMN};
pub use texts::RowText;

use crate::error::{DataError, Result};
use crate::shards::ShardIndex;
use crate::spec::DataSpec;
use crate::tokenizer::TextTokenizer;
use prep::{BatchBuilder, Prep};
use shuffle::ShuffleBuffer;
use source::{MediaKind, Source};
use stream::{RowStream, TakeRows};

/// Everything a [`Loader`] needs.
#[derive(Debug, Clone)]
pub struct LoaderConfig {
    /// Parquet shard files, in a fixed order (e.g. from `resolve_shards`).
    pub shards: Vec<PathBuf>,
    /// Spec every shard's schema must satisfy.
    pub spec: DataSpec,
    /// Tokenizer for the `text` column.
    pub tokenizer: Arc<TextTokenizer>,
    /// Side of the square model input, in pixels.
    pub image_size: usize,
    /// Token ids per caption, EOS and padding included.
    pub text_len: usize,
    /// Samples per batch.
    pub batch_size: usize,
    /// Seed of the unit and row shuffles.
    pub seed: u64,
    /// Whether training order is shuffled.
    pub shuffle: bool,
    /// Extra text columns copied into [`Batch::labels`].
    pub label_columns: Vec<String>,
    /// Threads decoding images; 0 means one per core.
    pub threads: usize,
}

/// A batch of preprocessed samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// Number of samples.
    pub size: usize,
    /// Image side in pixels.
    pub image_size: usize,
    /// Frames per sample: 1 for images, the clip length for video.
    pub frames: usize,
    /// Pixels, `[size, 3, image_size, image_size]` row-major in [-1, 1] (images) or
    /// `[size, frames, 3, image_size, image_size]` (video).
    pub pixels: Vec<f32>,
    /// Tokens per sample.
    pub text_len: usize,
    /// Token ids, `[size, text_len]` row-major.
    pub input_ids: Vec<i64>,
    /// Target tokens per sample (0 for image-text pairs).
    pub target_len: usize,
    /// Target ids with EOS, `[size, target_len]`, −100 after EOS (PaLI tasks only).
    pub target_ids: Vec<i64>,
    /// Raw targets (PaLI tasks; empty strings for pairs).
    pub targets: Vec<String>,
    /// Every reference per sample for evaluation: all captions, all answers, or a detection's
    /// box as location tokens (empty for pairs).
    pub references: Vec<Vec<String>>,
    /// A detection's true box (None for other formats).
    pub target_boxes: Vec<Option<crate::loc::NormBox>>,
    /// Row ids (the `id` column, or `file#row_group:row`).
    pub ids: Vec<String>,
    /// Raw input texts: captions of pairs, prompts of tasks.
    pub texts: Vec<String>,
    /// One vector of values per requested label column.
    pub labels: BTreeMap<String, Vec<String>>,
    /// Rows skipped (corrupt image, null field) while filling this batch.
    pub skipped: usize,
}

/// Streams batches for one rank.
pub struct Loader {
    source: Source,
    prep: Prep,
    stream: ShuffleBuffer,
    batch_size: usize,
    shuffle: bool,
}

impl Loader {
    /// Indexes the shards and checks they suit this loader; errors if rank `rank` gets no rows.
    pub fn new(cfg: LoaderConfig, rank: usize, world: usize) -> Result<Loader> {
        Self::new_task(cfg, RowFormat::Pair, 0, rank, world)
    }

    /// A loader of PaLI task rows: prompts as input ids, targets of `target_len` tokens.
    pub fn new_task(
        cfg: LoaderConfig,
        format: RowFormat,
        target_len: usize,
        rank: usize,
        world: usize,
    ) -> Result<Loader> {
        validate(&cfg, rank, world)?;
        if format.has_target() && target_len == 0 {
            return Err(DataError::config(
                "target_len",
                "a task format needs at least one target token",
            ));
        }
        let index = ShardIndex::build(&cfg.shards, &cfg.spec)?;
        // Several zero-shot tasks may share a label column; read it once.
        let mut seen = BTreeSet::new();
        let labels: Vec<String> = cfg
            .label_columns
            .into_iter()
            .filter(|c| seen.insert(c.clone()))
            .collect();
        let media = if cfg.spec.columns.iter().any(|c| c.name == FRAMES_COLUMN) {
            MediaKind::Video {
                max_frames: DEFAULT_MAX_FRAMES,
            }
        } else {
            MediaKind::Image
        };
        let source = Source::new(
            index, &cfg.spec, format, media, labels, cfg.seed, rank, world,
        )?;
        let mut prep = Prep::new(
            cfg.threads,
            cfg.tokenizer,
            cfg.image_size,
            cfg.text_len,
            target_len,
        )?;
        if let MediaKind::Video { max_frames } = media {
            prep.frames = max_frames;
        }
        tracing::info!(
            rank,
            world,
            shards = source.index.shards().len(),
            rows = source.index.total_rows(),
            units = source.units.len(),
            "data loader ready"
        );
        Ok(Loader {
            source,
            prep,
            stream: ShuffleBuffer::new(RowStream::new(cfg.shuffle, true), 0),
            batch_size: cfg.batch_size,
            shuffle: cfg.shuffle,
        })
    }

    /// Rows in all of this loader's shards (every rank's share together).
    pub fn rows(&self) -> usize {
        self.source.index.total_rows()
    }

    /// Augments every image this loader produces (training only), keyed by its seed.
    pub fn with_augment(mut self, augment: crate::augment::Augment) -> Result<Loader> {
        augment
            .validate()
            .map_err(|m| DataError::config("augment", m))?;
        self.prep.augment = Some((augment, self.source.seed));
        Ok(self)
    }

    /// Draws training rows through a shuffle buffer of `rows` rows (0 or 1: none), on top of the
    /// per-unit row shuffle; only when this loader shuffles. Resume stays exact (`shuffle.rs`).
    pub fn with_shuffle_buffer(mut self, rows: usize) -> Result<Loader> {
        if !self.shuffle || rows == self.stream.size() {
            return Ok(self);
        }
        let at = self.stream.cursor();
        self.stream = ShuffleBuffer::new(RowStream::new(true, true), rows);
        if at != Cursor::default() {
            self.stream.seek(&self.source, &at)?;
        }
        Ok(self)
    }

    /// Uses at most `max_frames` frames per clip (a video loader's default is
    /// [`DEFAULT_MAX_FRAMES`]); every sample then has exactly that many.
    pub fn with_max_frames(mut self, max_frames: usize) -> Result<Loader> {
        match self.source.media {
            MediaKind::Image => Err(DataError::config(
                "frames",
                format!(
                    "{} hold images; frames apply to video shards (a spec with a {FRAMES_COLUMN:?} column)",
                    self.source.index.describe()
                ),
            )),
            MediaKind::Video { .. } if max_frames == 0 => {
                Err(DataError::config("frames", "must be at least 1"))
            }
            MediaKind::Video { .. } => {
                self.source.media = MediaKind::Video { max_frames };
                self.prep.frames = max_frames;
                Ok(self)
            }
        }
    }

    /// Frames per sample: 1 for images, the clip length for video.
    pub fn frames(&self) -> usize {
        self.prep.frames
    }

    /// The next training batch, always `batch_size` samples; wraps into the next epoch.
    ///
    /// On error the cursor is left where this batch started.
    pub fn next_batch(&mut self) -> Result<Batch> {
        self.next_batch_of(self.batch_size)
    }

    /// The next `n` training samples as one batch (mixtures draw varying counts per dataset).
    ///
    /// On error the cursor is left where this batch started.
    pub fn next_batch_of(&mut self, n: usize) -> Result<Batch> {
        let start = self.stream.cursor();
        match fill(&self.source, &self.prep, &mut self.stream, n, true) {
            Ok(Some(batch)) => Ok(batch),
            Ok(None) => Err(DataError::EmptyDataset {
                rank: self.source.rank,
                world: self.source.world,
                shards: self.source.index.describe(),
            }),
            Err(e) => {
                self.stream.reset_to(start);
                Err(e)
            }
        }
    }

    /// Position of the next sample to be produced.
    pub fn cursor(&self) -> Cursor {
        self.stream.cursor()
    }

    /// Resumes from the cursors that `old_world` ranks saved (in rank order) at another world
    /// size: the rest of their epoch — every row none of them has read, and no other — is
    /// dealt out afresh to this loader's world; later epochs follow the normal plan.
    pub fn seek_resharded(&mut self, cursors: &[Cursor]) -> Result<()> {
        let s = &self.source;
        let epoch = cursors.first().map(|c| c.epoch).unwrap_or(0);
        if cursors.iter().any(|c| c.epoch != epoch) {
            return Err(DataError::config(
                "cursor",
                "the saved ranks are in different epochs; resume with the world size that saved them until the next epoch",
            ));
        }
        let old_world = cursors.len();
        // Every row none of the old ranks handed out, including rows left in their buffers.
        let mut remaining = Vec::new();
        for (r, c) in cursors.iter().enumerate() {
            let from = RowStream::spans_from(s, c, r, old_world, self.shuffle);
            match c.shuffled.filter(|b| b.taken > 0) {
                Some(b) => {
                    remaining.extend(shuffle::remaining_spans(s, &from, epoch, b.buffer, b.taken))
                }
                None => remaining.extend(from),
            }
        }
        let mine: Vec<Span> = remaining
            .into_iter()
            .skip(s.rank)
            .step_by(s.world.max(1))
            .collect();
        let cursor = match mine.first() {
            Some(span) => Cursor {
                epoch,
                unit: 0,
                row: span.start,
                plan: Some(mine),
                shuffled: None,
            },
            // Nothing left for this rank in this epoch: start the next one.
            None => Cursor::epoch_start(epoch + 1),
        };
        self.seek(&cursor)
    }

    /// Resumes at `c`; the following batches equal those of an uninterrupted run.
    pub fn seek(&mut self, c: &Cursor) -> Result<()> {
        self.stream.seek(&self.source, c)
    }

    /// One unshuffled pass over this rank's rows; the last batch may be smaller.
    ///
    /// Independent of the training cursor.
    pub fn epoch_batches(&self) -> EpochBatches<'_> {
        EpochBatches {
            loader: self,
            stream: RowStream::new(false, false),
            done: false,
        }
    }

    /// Rows this rank reads in `epoch` (before skipping bad rows).
    pub fn epoch_rows(&self, epoch: u64) -> usize {
        let s = &self.source;
        plan::rank_units(s.units.len(), s.seed, epoch, self.shuffle, s.rank, s.world)
            .into_iter()
            .map(|u| s.units[u].rows)
            .sum()
    }

    /// The shard index the loader reads.
    pub fn index(&self) -> &ShardIndex {
        &self.source.index
    }
}

/// Iterator over one evaluation pass, from [`Loader::epoch_batches`].
pub struct EpochBatches<'a> {
    loader: &'a Loader,
    stream: RowStream,
    done: bool,
}

impl Iterator for EpochBatches<'_> {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.done {
            return None;
        }
        let l = self.loader;
        let out = fill(&l.source, &l.prep, &mut self.stream, l.batch_size, false).transpose();
        // Stop after the pass ends or fails; a failed row group is not retried.
        self.done = !matches!(out, Some(Ok(_)));
        out
    }
}

/// Builds a loader and collects one evaluation pass of rank `rank`.
pub fn one_pass(cfg: LoaderConfig, rank: usize, world: usize) -> Result<Vec<Batch>> {
    Loader::new(cfg, rank, world)?.epoch_batches().collect()
}

/// Fills one batch from `stream`, replacing skipped rows with later ones.
///
/// Returns `None` only when a single-pass stream is exhausted before any sample.
fn fill(
    src: &Source,
    prep: &Prep,
    stream: &mut impl TakeRows,
    batch_size: usize,
    training: bool,
) -> Result<Option<Batch>> {
    let mut builder = BatchBuilder::new(batch_size, prep, &src.labels);
    while builder.len() < batch_size {
        let rows = stream.take(src, batch_size - builder.len())?;
        if rows.is_empty() {
            break;
        }
        let n_rows = rows.len();
        let results = prep.run(rows, builder.pixel_slots(n_rows));
        let ok: Vec<bool> = results.iter().map(|(_, s)| s.is_ok()).collect();
        builder.keep_slots(&ok);
        for (origin, sample) in results {
            match sample {
                Ok(s) => builder.push(s),
                Err(reason) => {
                    tracing::warn!(
                        file = %src.path(origin.shard).display(),
                        row_group = origin.row_group,
                        row = origin.row,
                        "skipping row: {reason}"
                    );
                    builder.skip();
                }
            }
        }
        // A whole pass without one usable row would otherwise loop forever.
        if training && builder.len() == 0 && builder.skipped() > src.index.total_rows() {
            return Err(DataError::EmptyDataset {
                rank: src.rank,
                world: src.world,
                shards: format!("{} (every row was skipped)", src.index.describe()),
            });
        }
    }
    if builder.len() == 0 {
        if builder.skipped() > 0 {
            tracing::warn!(
                skipped = builder.skipped(),
                "pass ended with only skipped rows"
            );
        }
        return Ok(None);
    }
    Ok(Some(builder.finish()))
}

fn validate(cfg: &LoaderConfig, rank: usize, world: usize) -> Result<()> {
    let positive = [
        ("batch_size", cfg.batch_size),
        ("image_size", cfg.image_size),
        ("text_len", cfg.text_len),
        ("world", world),
    ];
    if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
        return Err(DataError::config(key, "must be at least 1"));
    }
    if rank >= world {
        return Err(DataError::config(
            "rank",
            format!("{rank} is not below world size {world}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod buffer_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod video_tests;
