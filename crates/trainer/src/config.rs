//! The experiment config: typed sections composed from each crate, loaded from YAML with `base:`
//! inheritance and `--set` overrides; unknown keys are refused with their key path and file.

use crate::error::{Result, TrainerError};
use crate::yaml_tree::YamlTree;
use palisade_data::RowFormat;
use palisade_evaluator::EvalConfig;
use palisade_model::{LanguageSpec, TextSpec, VisionSpec};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One whole experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Human-readable name, used for the default run folder.
    pub name: String,
    /// Which training stage this is.
    #[serde(default)]
    pub stage: Stage,
    /// The one seed every RNG derives from.
    #[serde(default)]
    pub seed: u64,
    /// `cpu`, `cuda` or `cuda:N`.
    #[serde(default = "default_device")]
    pub device: String,
    /// libtorch intra-op threads (0: all cores).
    #[serde(default)]
    pub threads: usize,
    /// Run folder (default `runs/<name>`); `--run-dir` overrides.
    #[serde(default)]
    pub run_dir: Option<PathBuf>,
    /// Model sizes.
    pub model: ModelSection,
    /// Data sources.
    pub data: DataSection,
    /// Optimisation and checkpointing.
    pub train: TrainSection,
    /// Evaluation.
    #[serde(default)]
    pub eval: EvalConfig,
}

/// Training stages of the PaLI-3 recipe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Stage 0: SigLIP contrastive pretraining of image and text towers.
    #[default]
    Siglip,
    /// PaLI stages (1: mixture with the ViT frozen; 2: higher resolution, everything trained;
    /// transfer: one task, ViT frozen) — the same loop, set by `train.freeze_vision`,
    /// `model.vision.image_size` and `data.mixture`.
    Pali,
}

/// The model section: the two towers of SigLIP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Image tower (both stages).
    pub vision: VisionSpec,
    /// SigLIP's text tower (stage `siglip`).
    #[serde(default)]
    pub text: Option<TextSpec>,
    /// PaLI's encoder-decoder (stage `pali`).
    #[serde(default)]
    pub language: Option<LanguageSpec>,
    /// Start from this model folder (same stage) instead of random weights.
    #[serde(default)]
    pub init: Option<PathBuf>,
    /// PaLI: a SigLIP model folder whose ViT initialises the image encoder (resampled to
    /// `vision.image_size`; the text tower is dropped).
    #[serde(default)]
    pub init_vision: Option<PathBuf>,
    /// PaLI: a T5 folder (`palisade import hf-t5`) initialising the language model.
    #[serde(default)]
    pub init_language: Option<PathBuf>,
}

/// One dataset of a PaLI mixture.
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
    /// Video sources (a spec with a `frames` column): most frames per clip, chosen at a fixed
    /// stride (default 16); every source of a mixture must give the same count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<usize>,
}

/// Where the data comes from and how it is prepared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// Training shards (glob, relative to the working directory) of stage `siglip`.
    #[serde(default)]
    pub train: Option<String>,
    /// Stage `pali`: the datasets to mix, by name.
    #[serde(default)]
    pub mixture: BTreeMap<String, MixtureSource>,
    /// Stage `pali`: prompt tokens (EOS and padding included).
    #[serde(default = "default_prompt_len")]
    pub text_len: usize,
    /// Stage `pali`: target tokens (EOS included; the rest ignored by the loss).
    #[serde(default = "default_target_len")]
    pub target_len: usize,
    /// Held-out shards for evaluation.
    #[serde(default)]
    pub eval: Option<String>,
    /// Data spec the shards must follow (a name in data_specs/, or a path).
    #[serde(default = "default_spec")]
    pub spec: String,
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
    pub augment: Option<palisade_data::augment::Augment>,
    /// Generate synthetic data here when the shards are missing.
    #[serde(default)]
    pub synth: Option<SynthSection>,
}

/// What `data.synth` generates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SynthKind {
    /// Still scenes: shapes shards (stage siglip) or their caption/VQA/refcoco shards (pali).
    #[default]
    Scenes,
    /// Clips of moving shapes: caption/ and vqa/ shards of the `video` spec (stage pali).
    Video,
}

/// Synthetic shapes data to generate when missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthSection {
    /// Still scenes (default) or video clips.
    #[serde(default, skip_serializing_if = "is_scenes")]
    pub kind: SynthKind,
    /// `kind: video`: frames of the longest clip (clips have half to all of them).
    #[serde(
        default = "default_clip_frames",
        skip_serializing_if = "is_default_clip_frames"
    )]
    pub clip_frames: usize,
    /// Folder for the train split (the eval split goes to `eval_dir`).
    pub train_dir: PathBuf,
    /// Folder for the held-out split.
    pub eval_dir: PathBuf,
    /// Training rows.
    pub train_rows: usize,
    /// Held-out rows.
    pub eval_rows: usize,
    /// Rendered image size.
    #[serde(default = "default_synth_size")]
    pub image_size: u32,
    /// Most objects per scene.
    #[serde(default = "default_objects")]
    pub max_objects: usize,
    /// Tokenizer vocabulary cap.
    #[serde(default = "default_vocab")]
    pub vocab_size: usize,
}

/// Optimiser, schedule and checkpoint cadence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    /// Global batch size (pairs per step).
    pub batch_size: usize,
    /// Total optimiser steps.
    pub steps: u64,
    /// Peak learning rate.
    pub lr: f64,
    /// Linear warm-up steps.
    #[serde(default)]
    pub warmup_steps: u64,
    /// Final learning rate as a fraction of the peak (cosine decay).
    #[serde(default)]
    pub min_lr_ratio: f64,
    /// Decoupled weight decay.
    #[serde(default = "default_wd")]
    pub weight_decay: f64,
    /// Adam β₁, β₂.
    #[serde(default = "default_betas")]
    pub betas: [f64; 2],
    /// Adam ε.
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Global gradient-norm clip (0: off).
    #[serde(default = "default_clip")]
    pub grad_clip: f64,
    /// Log metrics every N steps.
    #[serde(default = "default_log_every")]
    pub log_every: u64,
    /// Checkpoint every N steps (and at the end).
    #[serde(default = "default_ckpt_every")]
    pub checkpoint_every: u64,
    /// Checkpoints to keep.
    #[serde(default = "default_keep")]
    pub keep_last: usize,
    /// Evaluate every N steps (0: only at the end).
    #[serde(default)]
    pub eval_every: u64,
    /// Stage `pali`: keep the image encoder frozen (stage 1, transfer); false trains it (stage 2).
    #[serde(default = "yes")]
    pub freeze_vision: bool,
    /// Stage `pali`: label smoothing of the token cross-entropy.
    #[serde(default)]
    pub label_smoothing: f64,
    /// Data parallelism: gradients are averaged over ranks in flat buckets of this many MiB.
    #[serde(default = "default_bucket_mb")]
    pub grad_bucket_mb: f64,
}

fn default_device() -> String {
    "cpu".into()
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
fn is_scenes(k: &SynthKind) -> bool {
    *k == SynthKind::Scenes
}
fn default_clip_frames() -> usize {
    8
}
fn is_default_clip_frames(n: &usize) -> bool {
    *n == default_clip_frames()
}
fn default_synth_size() -> u32 {
    64
}
fn default_objects() -> usize {
    1
}
fn default_vocab() -> usize {
    512
}
fn default_wd() -> f64 {
    1e-4
}
fn default_betas() -> [f64; 2] {
    [0.9, 0.999]
}
fn default_eps() -> f64 {
    1e-8
}
fn default_clip() -> f64 {
    1.0
}
fn default_log_every() -> u64 {
    10
}
fn default_ckpt_every() -> u64 {
    500
}
fn default_keep() -> usize {
    3
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
fn default_bucket_mb() -> f64 {
    25.0
}

impl ExperimentConfig {
    /// Loads `path`, applies `sets`, and checks every key and value.
    pub fn load(path: &Path, sets: &[String]) -> Result<ExperimentConfig> {
        let mut tree = YamlTree::load(path)?;
        tree.apply_sets(sets)?;
        Self::from_tree(&tree)
    }

    /// Deserialises a merged tree, naming the key path and its file on error.
    pub fn from_tree(tree: &YamlTree) -> Result<ExperimentConfig> {
        let de = tree.root.clone();
        let cfg: ExperimentConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.inner().to_string();
            // For an unknown field, point at the offending key itself.
            let key = match inner.split('`').nth(1) {
                Some(field) if inner.starts_with("unknown field") => {
                    if path == "." || path.is_empty() {
                        field.to_string()
                    } else {
                        format!("{path}.{field}")
                    }
                }
                _ => path,
            };
            TrainerError::Config(format!("{}: key {key}: {inner}", tree.origin_of(&key)))
        })?;
        cfg.validate()
            .map_err(|e| TrainerError::Config(format!("{}: {e}", tree.file.display())))?;
        Ok(cfg)
    }

    /// Checks values the types cannot.
    pub fn validate(&self) -> std::result::Result<(), String> {
        match self.stage {
            Stage::Siglip => {
                if self.model.text.is_none() {
                    return Err("key model.text: stage siglip needs the text tower".into());
                }
                if self.data.train.is_none() {
                    return Err("key data.train: stage siglip needs training shards".into());
                }
                if !self.eval.tasks.is_empty() {
                    return Err("key eval.tasks: PaLI benchmarks need stage pali (SigLIP is evaluated on data.eval)".into());
                }
            }
            Stage::Pali => {
                if self.model.language.is_none() {
                    return Err("key model.language: stage pali needs the language model".into());
                }
                if self.data.mixture.is_empty() {
                    return Err("key data.mixture: stage pali needs at least one dataset".into());
                }
                if let Some((name, m)) = self
                    .data
                    .mixture
                    .iter()
                    .find(|(_, m)| !(m.weight > 0.0 && m.weight.is_finite()))
                {
                    return Err(format!(
                        "key data.mixture.{name}.weight: {} must be positive",
                        m.weight
                    ));
                }
                if let Some((name, _)) = self.data.mixture.iter().find(|(_, m)| m.frames == Some(0))
                {
                    return Err(format!(
                        "key data.mixture.{name}.frames: must be at least 1"
                    ));
                }
                if self.data.text_len == 0 || self.data.target_len == 0 {
                    return Err("keys data.text_len and data.target_len: must be positive".into());
                }
            }
        }
        if let Some(a) = &self.data.augment {
            a.validate().map_err(|e| format!("key data.augment: {e}"))?;
        }
        let t = &self.train;
        if t.batch_size == 0 {
            return Err("key train.batch_size: must be positive".into());
        }
        if t.steps == 0 {
            return Err("key train.steps: must be positive".into());
        }
        if !(t.lr > 0.0 && t.lr.is_finite()) {
            return Err(format!(
                "key train.lr: {} is not a positive learning rate",
                t.lr
            ));
        }
        if t.warmup_steps > t.steps {
            return Err(format!(
                "key train.warmup_steps: {} exceeds train.steps {}",
                t.warmup_steps, t.steps
            ));
        }
        if !(0.0..=1.0).contains(&t.min_lr_ratio) {
            return Err("key train.min_lr_ratio: must be within [0, 1]".into());
        }
        if t.betas.iter().any(|b| !(0.0..1.0).contains(b)) {
            return Err("key train.betas: each must be within [0, 1)".into());
        }
        if t.keep_last == 0 {
            return Err("key train.keep_last: must keep at least one checkpoint".into());
        }
        if !(t.grad_bucket_mb > 0.0 && t.grad_bucket_mb.is_finite()) {
            return Err(format!(
                "key train.grad_bucket_mb: {} is not a positive size",
                t.grad_bucket_mb
            ));
        }
        if t.log_every == 0 || t.checkpoint_every == 0 {
            return Err("keys train.log_every and train.checkpoint_every: must be positive".into());
        }
        if !(self.device == "cpu" || self.device == "cuda" || self.device.starts_with("cuda:")) {
            return Err(format!(
                "key device: {:?} is not cpu, cuda or cuda:N",
                self.device
            ));
        }
        self.eval.validate()?;
        Ok(())
    }

    /// The resolved config as YAML (what is written into the run folder).
    pub fn to_yaml(&self) -> String {
        serde_norway::to_string(self)
            .unwrap_or_else(|e| format!("# could not serialise config: {e}\n"))
    }

    /// SHA-256 of the resolved config, recorded in checkpoints.
    pub fn hash(&self) -> String {
        let digest = Sha256::digest(self.to_yaml().as_bytes());
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    /// The run folder: `--run-dir`, else `run_dir:`, else `runs/<name>`.
    pub fn resolve_run_dir(&self, cli: Option<&Path>) -> PathBuf {
        cli.map(Path::to_path_buf)
            .or_else(|| self.run_dir.clone())
            .unwrap_or_else(|| PathBuf::from("runs").join(&self.name))
    }
}
