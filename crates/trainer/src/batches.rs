//! Where training batches come from: one loader (SigLIP pairs) or a weighted mixture of task
//! loaders (PaLI), read ahead on a background thread (`data.prefetch`), with a position — of
//! what was handed to the training step — that goes into checkpoints.

use crate::config::{ExperimentConfig, Stage};
use crate::error::{Result, TrainerError};
use crate::setup::{self, Split};
use palisade_data::mixture::{Mixture, MixtureCursor, MixtureEntry};
use palisade_data::{Batch, Cursor, DataSpec, Loader, LoaderConfig, Prefetch, TextTokenizer};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// A training batch source.
pub enum BatchSource {
    /// One dataset.
    Single(Box<Prefetch<Loader>>),
    /// A weighted mixture.
    Mixture(Box<Prefetch<Mixture>>),
}

/// A batch source's position, as saved per rank in `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SourceCursor {
    /// Of a single loader.
    Single(Cursor),
    /// Of a mixture.
    Mixture(MixtureCursor),
}

impl BatchSource {
    /// The training source of `cfg` for this rank; `batch` is the per-rank batch size.
    pub fn train(
        cfg: &ExperimentConfig,
        tok: &Arc<TextTokenizer>,
        image_size: usize,
        text_len: usize,
        batch: usize,
        rank: usize,
        world: usize,
    ) -> Result<BatchSource> {
        match cfg.stage {
            Stage::Siglip => {
                let mcfg = setup::model_config(cfg, tok.vocab_size())?;
                let loader = setup::loader(cfg, Split::Train, tok, &mcfg, batch, rank, world)?;
                Ok(BatchSource::Single(Box::new(Prefetch::new(
                    loader,
                    cfg.data.prefetch,
                ))))
            }
            Stage::Pali => {
                let mut entries = Vec::new();
                for (name, m) in &cfg.data.mixture {
                    let spec = if m.spec.ends_with(".yaml") {
                        DataSpec::load(Path::new(&m.spec))?
                    } else {
                        DataSpec::embedded(&m.spec)?
                    };
                    let lc = LoaderConfig {
                        shards: palisade_data::resolve_shards(&m.train, Path::new("."))?,
                        spec,
                        tokenizer: tok.clone(),
                        image_size,
                        text_len,
                        batch_size: batch,
                        seed: cfg.seed,
                        shuffle: cfg.data.shuffle,
                        label_columns: Vec::new(),
                        threads: cfg.data.threads,
                    };
                    let loader =
                        Loader::new_task(lc, m.format.clone(), cfg.data.target_len, rank, world)
                            .map_err(|e| {
                                TrainerError::Config(format!("key data.mixture.{name}: {e}"))
                            })?;
                    let loader = match &cfg.data.augment {
                        Some(a) => loader.with_augment(a.clone())?,
                        None => loader,
                    };
                    let loader = loader.with_shuffle_buffer(cfg.data.shuffle_buffer)?;
                    let loader = match m.frames {
                        Some(f) => loader.with_max_frames(f).map_err(|e| {
                            TrainerError::Config(format!("key data.mixture.{name}.frames: {e}"))
                        })?,
                        None => loader,
                    };
                    entries.push(MixtureEntry {
                        name: name.clone(),
                        loader,
                        weight: m.weight,
                    });
                }
                let mixture = Mixture::new(entries, cfg.seed)?;
                Ok(BatchSource::Mixture(Box::new(Prefetch::new(
                    mixture,
                    cfg.data.prefetch,
                ))))
            }
        }
    }

    /// The next batch of `n` examples.
    pub fn next_batch(&mut self, n: usize) -> Result<Batch> {
        Ok(match self {
            BatchSource::Single(l) => l.next_batch(n)?,
            BatchSource::Mixture(m) => m.next_batch(n)?,
        })
    }

    /// The position to save.
    pub fn cursor(&self) -> SourceCursor {
        match self {
            BatchSource::Single(l) => SourceCursor::Single(l.position()),
            BatchSource::Mixture(m) => SourceCursor::Mixture(m.position()),
        }
    }

    /// Resumes from every rank's saved position when the number of ranks changed.
    pub fn seek_resharded(&mut self, saved: &[SourceCursor]) -> Result<()> {
        match self {
            BatchSource::Single(l) => {
                let cursors = all_of(saved, |c| match c {
                    SourceCursor::Single(c) => Some(c.clone()),
                    SourceCursor::Mixture(_) => None,
                })?;
                Ok(l.with_source(|l| l.seek_resharded(&cursors))?)
            }
            BatchSource::Mixture(m) => {
                let cursors = all_of(saved, |c| match c {
                    SourceCursor::Mixture(c) => Some(c.clone()),
                    SourceCursor::Single(_) => None,
                })?;
                Ok(m.with_source(|m| m.seek_resharded(&cursors))?)
            }
        }
    }

    /// Resumes at a saved position of the same kind.
    pub fn seek(&mut self, c: &SourceCursor) -> Result<()> {
        match (self, c) {
            (BatchSource::Single(l), SourceCursor::Single(c)) => Ok(l.seek(c)?),
            (BatchSource::Mixture(m), SourceCursor::Mixture(c)) => Ok(m.seek(c)?),
            _ => Err(TrainerError::Config(
                "the checkpoint's data position is of another kind (single dataset vs mixture)"
                    .into(),
            )),
        }
    }
}

/// Every saved position as one kind, or an error when any is of the other.
fn all_of<T>(saved: &[SourceCursor], pick: impl Fn(&SourceCursor) -> Option<T>) -> Result<Vec<T>> {
    saved
        .iter()
        .map(pick)
        .collect::<Option<Vec<T>>>()
        .ok_or_else(|| {
            TrainerError::Config(
                "the checkpoint's data positions are of another kind (single dataset vs mixture)"
                    .into(),
            )
        })
}
