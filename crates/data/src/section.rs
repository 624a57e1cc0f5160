//! The `data` section of an experiment config, and the loaders it describes: image-text pairs
//! (`data.train`, `data.eval`) or a weighted mixture of task datasets (`data.mixture`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::augment::Augment;
use crate::error::{DataError, Result};
use crate::loader::{Loader, LoaderConfig, RowFormat};
use crate::mixture::{Mixture, MixtureEntry};
use crate::shards::resolve_shards;
use crate::spec::DataSpec;
use crate::synth::SynthSection;
use crate::tokenizer::TextTokenizer;

/// Where the data comes from and how it is prepared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// Training shards (glob, relative to the working directory) of image-text pairs.
    #[serde(default)]
    pub train: Option<String>,
    /// Task datasets to mix, by name.
    #[serde(default)]
    pub mixture: BTreeMap<String, MixtureSource>,
    /// Tasks: prompt tokens (EOS and padding included).
    #[serde(default = "default_prompt_len")]
    pub text_len: usize,
    /// Tasks: target tokens (EOS included; the rest ignored by the loss).
    #[serde(default = "default_target_len")]
    pub target_len: usize,
    /// Held-out shards of image-text pairs for evaluation.
    #[serde(default)]
    pub eval: Option<String>,
    /// Data spec `train` and `eval` follow (a name in data_specs/, or a path).
    #[serde(default = "default_spec")]
    pub spec: String,
    /// The shards' own names for the spec's columns of `train` and `eval`
    /// (`{image: jpg, text: caption}`, as img2dataset writes them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, String>,
    /// Language of rows without a `lang` column or value (default `en`), every source's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// `tokenizer.json` path.
    pub tokenizer: PathBuf,
    /// Decode/preprocess threads.
    #[serde(default = "default_data_threads")]
    pub threads: usize,
    /// Shuffle training data (per-epoch, seeded).
    #[serde(default = "yes")]
    pub shuffle: bool,
    /// Rows in the training shuffle buffer, on top of the row-group and row shuffles (0: none).
    #[serde(default = "default_shuffle_buffer")]
    pub shuffle_buffer: usize,
    /// Training batches prepared ahead on a background thread (0: none).
    #[serde(default = "default_prefetch")]
    pub prefetch: usize,
    /// Training-image augmentation (random resized crop, flip, resize filter).
    #[serde(default)]
    pub augment: Option<Augment>,
    /// Generate synthetic data here when the shards are missing.
    #[serde(default)]
    pub synth: Option<SynthSection>,
}

/// One dataset of a task mixture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixtureSource {
    /// Shards (glob).
    pub train: String,
    /// Data spec the shards follow.
    pub spec: String,
    /// How rows become prompt and target (`{kind: caption|vqa|detect, prompt: ...}`).
    pub format: RowFormat,
    /// Relative sampling weight.
    #[serde(default = "one")]
    pub weight: f64,
    /// The shards' own names for the spec's columns (`{question: q, answers: a}`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, String>,
    /// Video sources (a spec with a `frames` column): most frames per clip, chosen at a fixed
    /// stride (default 16); every source of a mixture must give the same count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<usize>,
}

fn default_spec() -> String {
    "webli".into()
}
fn default_data_threads() -> usize {
    2
}
fn default_shuffle_buffer() -> usize {
    1024
}
fn default_prefetch() -> usize {
    2
}
fn yes() -> bool {
    true
}
fn one() -> f64 {
    1.0
}
fn default_prompt_len() -> usize {
    32
}
fn default_target_len() -> usize {
    32
}

/// Which split of the image-text pairs a loader reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// `data.train`: shuffled, augmented, endless.
    Train,
    /// `data.eval`: in order, one pass.
    Eval,
}

/// What a model reads of each example: the image side in pixels and the tokens per text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputSize {
    /// Side of the square model input, in pixels.
    pub image_size: usize,
    /// Token ids per text (EOS and padding included).
    pub text_len: usize,
}

/// This rank's part of a read: the per-rank batch size, the rank and the number of ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RankShare {
    /// Samples per batch on this rank.
    pub batch_size: usize,
    /// This rank.
    pub rank: usize,
    /// Ranks reading together.
    pub world: usize,
}

impl DataSection {
    /// Checks what every use of the section relies on; messages name the key.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if let Some(a) = &self.augment {
            a.validate().map_err(|e| format!("key data.augment: {e}"))?;
        }
        Ok(())
    }

    /// Checks the section describes image-text pairs.
    pub fn validate_pairs(&self) -> std::result::Result<(), String> {
        if self.train.is_none() {
            return Err("key data.train: image-text pairs need training shards".into());
        }
        Ok(())
    }

    /// Checks the section describes a task mixture.
    pub fn validate_mixture(&self) -> std::result::Result<(), String> {
        if self.mixture.is_empty() {
            return Err("key data.mixture: a task mixture needs at least one dataset".into());
        }
        if let Some((name, m)) = self
            .mixture
            .iter()
            .find(|(_, m)| !(m.weight > 0.0 && m.weight.is_finite()))
        {
            return Err(format!(
                "key data.mixture.{name}.weight: {} must be positive",
                m.weight
            ));
        }
        if let Some((name, _)) = self.mixture.iter().find(|(_, m)| m.frames == Some(0)) {
            return Err(format!(
                "key data.mixture.{name}.frames: must be at least 1"
            ));
        }
        if self.text_len == 0 || self.target_len == 0 {
            return Err("keys data.text_len and data.target_len: must be positive".into());
        }
        Ok(())
    }

    /// The tokenizer at `data.tokenizer`.
    pub fn load_tokenizer(&self) -> Result<TextTokenizer> {
        TextTokenizer::load(&self.tokenizer)
    }

    /// A loader of image-text pairs over `split` for this rank at `size`, rows ordered by
    /// `seed`; `label_columns` are read along (zero-shot labels).
    pub fn pairs(
        &self,
        split: Split,
        tok: &Arc<TextTokenizer>,
        size: InputSize,
        seed: u64,
        label_columns: Vec<String>,
        share: RankShare,
    ) -> Result<Loader> {
        let (key, pattern) = match split {
            Split::Train => ("data.train", &self.train),
            Split::Eval => ("data.eval", &self.eval),
        };
        let pattern = pattern
            .as_deref()
            .ok_or_else(|| DataError::config(key, "no shards are configured"))?;
        let train = split == Split::Train;
        let lc = LoaderConfig {
            shards: resolve_shards(pattern, Path::new("."))?,
            spec: self.bound_spec(&self.spec, &self.columns, "data.columns")?,
            tokenizer: tok.clone(),
            image_size: size.image_size,
            text_len: size.text_len,
            batch_size: share.batch_size,
            seed,
            shuffle: train && self.shuffle,
            label_columns,
            threads: self.threads,
        };
        let loader = Loader::new(lc, share.rank, share.world)?;
        // A step would hold some rows twice (an epoch boundary inside every batch).
        if train && share.batch_size * share.world > loader.rows() {
            return Err(DataError::config(
                "train.batch_size",
                format!(
                    "{} rows per step ({} ranks × {}) exceed the {} rows of {key} ({pattern}): \
                     each rank's share of the data must hold at least one batch",
                    share.batch_size * share.world,
                    share.world,
                    share.batch_size,
                    loader.rows()
                ),
            ));
        }
        let loader = match (&self.augment, train) {
            (Some(a), true) => loader.with_augment(a.clone())?,
            _ => loader,
        };
        loader.with_shuffle_buffer(if train { self.shuffle_buffer } else { 0 })
    }

    /// Spec `name` read through `columns` (at config key `key`) and `data.lang`.
    pub fn bound_spec(
        &self,
        name: &str,
        columns: &BTreeMap<String, String>,
        key: &str,
    ) -> Result<DataSpec> {
        DataSpec::named(name)?.bind(columns, self.lang.as_deref(), key)
    }

    /// The weighted mixture of `data.mixture` for this rank, read at `image_size` pixels with
    /// `data.text_len` prompt and `data.target_len` target tokens.
    pub fn mixture(
        &self,
        tok: &Arc<TextTokenizer>,
        image_size: usize,
        seed: u64,
        share: RankShare,
    ) -> Result<Mixture> {
        let mut entries = Vec::new();
        for (name, m) in &self.mixture {
            let named =
                |e: DataError| DataError::config(&format!("data.mixture.{name}"), e.to_string());
            let lc = LoaderConfig {
                shards: resolve_shards(&m.train, Path::new("."))?,
                spec: self.bound_spec(
                    &m.spec,
                    &m.columns,
                    &format!("data.mixture.{name}.columns"),
                )?,
                tokenizer: tok.clone(),
                image_size,
                text_len: self.text_len,
                batch_size: share.batch_size,
                seed,
                shuffle: self.shuffle,
                label_columns: Vec::new(),
                threads: self.threads,
            };
            let loader = Loader::new_task(
                lc,
                m.format.clone(),
                self.target_len,
                share.rank,
                share.world,
            )
            .map_err(named)?;
            let loader = match &self.augment {
                Some(a) => loader.with_augment(a.clone())?,
                None => loader,
            };
            let loader = loader.with_shuffle_buffer(self.shuffle_buffer)?;
            let loader = match m.frames {
                Some(f) => loader.with_max_frames(f).map_err(|e| {
                    DataError::config(&format!("data.mixture.{name}.frames"), e.to_string())
                })?,
                None => loader,
            };
            entries.push(MixtureEntry {
                name: name.clone(),
                loader,
                weight: m.weight,
            });
        }
        Mixture::new(entries, seed)
    }
}
