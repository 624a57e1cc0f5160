//! The experiment config: typed sections composed from each crate's own (`model` from
//! palisade-model, `data` from palisade-data, `eval` from palisade-evaluator) plus the trainer's
//! `train`. Reading one from YAML is `experiment.rs`; what each stage kind needs is checked by
//! its kind in `stages/`.

use palisade_data::DataSection;
use palisade_evaluator::EvalConfig;
use palisade_model::autocast::Precision;
use palisade_model::ModelSection;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// One whole experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Human-readable name, used for the default run folder.
    pub name: String,
    /// The stage kind, by its name in the stage registry (`siglip`, `pali`).
    #[serde(default = "default_stage")]
    pub stage: String,
    /// The one seed every RNG derives from.
    #[serde(default)]
    pub seed: u64,
    /// `cpu`, `cuda` or `cuda:N`.
    #[serde(default = "default_device")]
    pub device: String,
    /// libtorch intra-op threads (0: all cores).
    #[serde(default)]
    pub threads: usize,
    /// Ranks sharing a node split `threads` and `data.threads` (0: the node's cores) between
    /// them, at least one each; false gives every rank the full counts.
    #[serde(default = "yes")]
    pub divide_threads: bool,
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
    /// How state is split over ranks.
    #[serde(default)]
    pub parallel: ParallelSection,
}

/// How training state is split over the data-parallel ranks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParallelSection {
    /// `none` (every rank holds everything), `optimizer` (ZeRO-1: each rank keeps the optimizer
    /// state of its share of the parameters) or `full` (ZeRO-3 / FSDP: the blocks' parameters
    /// and gradients too, gathered per remat segment).
    #[serde(default = "default_shard")]
    pub shard: String,
    /// Tensor-parallel ranks per model replica (Megatron-style splits of each block's
    /// attention heads and MLP units); the data-parallel size is the world over this.
    #[serde(default = "default_tp")]
    pub tp: usize,
    /// Sequence parallelism in training (Megatron's): the SigLIP towers' blocks (the ViT's in
    /// PaLI too) run on 1 / tp of the tokens, gathered for attention and the MLP.
    #[serde(default)]
    pub sequence_parallel: bool,
}

impl Default for ParallelSection {
    fn default() -> ParallelSection {
        ParallelSection {
            shard: default_shard(),
            tp: default_tp(),
            sequence_parallel: false,
        }
    }
}

fn default_tp() -> usize {
    1
}

fn default_shard() -> String {
    "none".into()
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
    /// `adamw` or `adafactor` (big_vision's, `train.adafactor`).
    #[serde(default = "default_optimizer")]
    pub optimizer: String,
    /// Adafactor's hyper-parameters (with `optimizer: adafactor`).
    #[serde(default)]
    pub adafactor: crate::optimizer::AdafactorConfig,
    /// After warm-up: `cosine`, `linear` (both down to `min_lr_ratio`) or `rsqrt`.
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// rsqrt's timescale in steps.
    #[serde(default = "default_timescale")]
    pub timescale: u64,
    /// Steps at the end over which the learning rate falls linearly to 0 (0: none).
    #[serde(default)]
    pub cooldown_steps: u64,
    /// Parameters to freeze, as whole-name regular expressions (`vision_model\\..*`).
    #[serde(default)]
    pub freeze: Vec<String>,
    /// Decay of an exponential moving average of the weights, saved and evaluated beside them
    /// (0: none; big_vision uses e.g. 0.9999).
    #[serde(default)]
    pub ema_decay: f64,
    /// Learning-rate multipliers by whole-name regular expression (the first match wins).
    #[serde(default)]
    pub lr_mults: std::collections::BTreeMap<String, f64>,
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
    /// Micro-batches per rank per step: each rank's share of the batch is computed in this
    /// many pieces whose gradients sum to the whole share's (SigLIP's exactly, GradCache-style).
    #[serde(default = "default_accum")]
    pub accum_steps: usize,
    /// Activation checkpointing of the transformer blocks: `none`, `blocks` (each block) or
    /// `every_N` (segments of N blocks); gradients are unchanged, block activations recomputed.
    #[serde(default = "default_remat")]
    pub remat: String,
    /// `fp32`, `bf16_mixed` (float32 weights, bfloat16 autocast) or `bf16` (bfloat16 weights
    /// and gradients, float32 master weights in the optimizer); unset: `bf16_mixed` on CUDA,
    /// `fp32` on the CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    /// Log metrics every N steps.
    #[serde(default = "default_log_every")]
    pub log_every: u64,
    /// Checkpoint every N steps (and at the end).
    #[serde(default = "default_ckpt_every")]
    pub checkpoint_every: u64,
    /// Checkpoints to keep.
    #[serde(default = "default_keep")]
    pub keep_last: usize,
    /// Remove the oldest checkpoint before writing a new one, so the disk holds `keep_last`
    /// checkpoints rather than `keep_last` + 1 (at the cost of one fewer while writing).
    #[serde(default)]
    pub prune_before_write: bool,
    /// Signals that mean "preempted": finish the step, checkpoint, exit with code 75.
    #[serde(default = "default_preempt_signals")]
    pub preempt_signals: Vec<String>,
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

fn default_stage() -> String {
    "siglip".into()
}
fn default_device() -> String {
    "cpu".into()
}
fn yes() -> bool {
    true
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
fn default_accum() -> usize {
    1
}
fn default_remat() -> String {
    "none".into()
}

/// Blocks per checkpointed segment for a `train.remat` value (0: no remat).
pub fn remat_blocks(value: &str) -> std::result::Result<usize, String> {
    let n = match value {
        "none" => Some(0),
        "blocks" => Some(1),
        v => v
            .strip_prefix("every_")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&n| n >= 1),
    };
    n.ok_or_else(|| {
        format!("key train.remat: {value:?} is not none, blocks or every_N (N a positive integer)")
    })
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
fn default_optimizer() -> String {
    "adamw".into()
}
fn default_schedule() -> String {
    "cosine".into()
}
fn default_timescale() -> u64 {
    10_000
}
fn default_preempt_signals() -> Vec<String> {
    ["TERM", "USR1", "HUP"].map(String::from).to_vec()
}
fn default_bucket_mb() -> f64 {
    25.0
}

impl ExperimentConfig {
    /// Checks what every stage kind relies on (each kind checks its own sections too).
    pub fn validate(&self) -> std::result::Result<(), String> {
        self.data.validate()?;
        let t = &self.train;
        if t.batch_size == 0 {
            return Err("key train.batch_size: must be positive".into());
        }
        if t.steps == 0 {
            return Err("key train.steps: must be positive".into());
        }
        if t.accum_steps == 0 {
            return Err("key train.accum_steps: must be at least 1".into());
        }
        remat_blocks(&t.remat)?;
        if let Some(p) = &t.precision {
            Precision::named(p)?;
        }
        match self.parallel.shard.as_str() {
            "none" | "optimizer" => {}
            "full" => {
                if remat_blocks(&t.remat)? == 0 {
                    return Err(
                        "key parallel.shard: full frees each block's parameters between \
                                its forward and its recomputation in backward, so it needs \
                                train.remat: blocks or every_N (not none)"
                            .into(),
                    );
                }
                if t.ema_decay > 0.0 {
                    return Err(format!(
                        "key train.ema_decay: {} keeps a whole copy of every parameter on every \
                         rank, which parallel.shard: full exists to avoid; set it to 0 or use \
                         parallel.shard: optimizer",
                        t.ema_decay
                    ));
                }
            }
            other => {
                return Err(format!(
                    "key parallel.shard: {other:?} is not none, optimizer or full"
                ))
            }
        }
        self.check_tp()?;
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
        crate::preempt::validate(&t.preempt_signals)?;
        if !matches!(t.optimizer.as_str(), "adamw" | "adafactor") {
            return Err(format!(
                "key train.optimizer: {:?} is not adamw or adafactor",
                t.optimizer
            ));
        }
        if crate::schedule::Kind::named(&t.schedule).is_none() {
            return Err(format!(
                "key train.schedule: {:?} is not cosine, linear or rsqrt",
                t.schedule
            ));
        }
        if !(0.0..1.0).contains(&t.ema_decay) {
            return Err(format!(
                "key train.ema_decay: {} is not within [0, 1)",
                t.ema_decay
            ));
        }
        if t.cooldown_steps > t.steps {
            return Err(format!(
                "key train.cooldown_steps: {} exceeds train.steps {}",
                t.cooldown_steps, t.steps
            ));
        }
        if let Some((k, m)) = t
            .lr_mults
            .iter()
            .find(|(_, m)| !(m.is_finite() && **m >= 0.0))
        {
            return Err(format!(
                "key train.lr_mults: {k:?} has multiplier {m}, not ≥ 0"
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

    /// `train.precision` on `device` (its default when unset; validated names).
    pub fn precision(&self, device: tch::Device) -> Precision {
        self.train
            .precision
            .as_deref()
            .and_then(|p| Precision::named(p).ok())
            .unwrap_or_else(|| Precision::default_for(device))
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
impl ExperimentConfig {
    /// What tensor parallelism (`parallel.tp` above 1) does not cover, refused by name:
    /// Adafactor (its factored moments and update clipping are statistics of whole matrices).
    fn check_tp(&self) -> std::result::Result<(), String> {
        let tp = self.parallel.tp;
        if tp == 0 {
            return Err(
                "key parallel.tp: 0; it counts ranks per tensor-parallel group, at least 1".into(),
            );
        }
        if tp == 1 && self.parallel.sequence_parallel {
            return Err(
                "key parallel.sequence_parallel: true splits the tokens over the \
                        tensor-parallel group, so it needs parallel.tp above 1"
                    .into(),
            );
        }
        if tp > 1 && self.train.optimizer != "adamw" {
            return Err(format!(
                "key train.optimizer: {} with parallel.tp: {tp} is not supported (Adafactor's \
                 factored moments and update clipping are taken over whole matrices, which \
                 tensor-parallel ranks hold in slices); use adamw",
                self.train.optimizer
            ));
        }
        Ok(())
    }
}
