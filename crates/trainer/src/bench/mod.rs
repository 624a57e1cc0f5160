//! Benchmarks (`palisade bench`): training steps of a SigLIP config or a PaLI preset — forward,
//! backward, clip, AdamW on random inputs of the configured sizes, excluding start-up and
//! warm-up steps — and, in their own files, the input path (`data`), generation (`decode`) and
//! the all-reduce tensor parallelism sends (`collectives`).

pub mod collectives;
pub mod data;
pub mod decode;
pub mod flops;
mod timing;

use crate::accumulate::with_remat;
use crate::config::ExperimentConfig;
use crate::device::{parse_device, set_threads};
use crate::error::Result;
use crate::optimizer::{AdamW, AdamWConfig, Optimizer};
use crate::stages::siglip::{build_model, model_config};
use palisade_model::pali::PaliConfig;
use palisade_model::weights;
use serde::Serialize;
use std::path::Path;
use tch::{Kind, Tensor};

/// Timings of one benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct StepBench {
    /// Model parameters.
    pub params: i64,
    /// Examples (image-text pairs, or PaLI examples) per step.
    pub batch_size: usize,
    /// libtorch threads.
    pub threads: i32,
    /// Timed steps.
    pub steps: usize,
    /// Median milliseconds per step.
    pub ms_per_step_median: f64,
    /// Mean milliseconds per step.
    pub ms_per_step_mean: f64,
    /// Median milliseconds of the step's update alone: clip, optimiser step, clear gradients.
    pub update_ms_median: f64,
    /// Examples per second at the median.
    pub examples_per_sec: f64,
    /// Model FLOPs of one step (matrix products, forward and backward; see `flops`).
    pub flops_per_step: f64,
    /// Where it ran (`cpu`, `cuda:0`); CUDA steps run under bf16 autocast.
    pub device: String,
    /// Peak resident memory of the process so far (VmHWM), MiB: on CPU, weights, optimizer
    /// state and the largest step's activations.
    pub peak_rss_mib: f64,
}

impl StepBench {
    /// The record of `steps` timed steps of a model with variables `vs`.
    fn new(
        vs: &tch::nn::VarStore,
        batch_size: usize,
        steps: usize,
        (median, mean): (f64, f64),
        update_ms_median: f64,
        flops_per_step: f64,
    ) -> StepBench {
        StepBench {
            params: weights::trainable(vs)
                .iter()
                .map(|(_, t)| t.numel() as i64)
                .sum(),
            batch_size,
            threads: tch::get_num_threads(),
            steps,
            ms_per_step_median: median,
            ms_per_step_mean: mean,
            update_ms_median,
            examples_per_sec: batch_size as f64 * 1000.0 / median,
            flops_per_step,
            device: format!("{:?}", vs.device()).to_lowercase(),
            peak_rss_mib: crate::preflight::peak_rss_mib(),
        }
    }
}

impl StepBench {
    /// One line for people: time per step, throughput, sizes.
    pub fn summary(&self) -> String {
        format!(
            "{:.2} ms/step (median of {}), {:.1} examples/s, {:.3} TFLOP/s, batch {}, {} trainable params, {} on {}, peak RSS {:.0} MiB",
            self.ms_per_step_median,
            self.steps,
            self.examples_per_sec,
            self.flops_per_step / self.ms_per_step_median / 1e9,
            self.batch_size,
            self.params,
            threads_or_gpu(&self.device, self.threads),
            self.device,
            self.peak_rss_mib
        )
    }
}

/// Runs `warmup` untimed and `steps` timed training steps of `cfg`'s SigLIP model. The
/// vocabulary is `vocab`, else the text spec's, else the config's tokenizer's, else 32,000; with
/// `config_out` the benchmarked model's config.json is written there (for the PyTorch baseline).
pub fn train_step(
    cfg: &ExperimentConfig,
    vocab: Option<usize>,
    config_out: Option<&Path>,
    warmup: usize,
    steps: usize,
) -> Result<StepBench> {
    let vocab = match vocab.or(cfg.model.text.as_ref().and_then(|t| t.vocab_size)) {
        Some(v) => v,
        None if cfg.data.tokenizer.exists() => cfg.data.load_tokenizer()?.vocab_size(),
        None => 32000,
    };
    let device = parse_device(&cfg.device, 0)?;
    set_threads(cfg.threads);
    let mcfg = model_config(cfg, vocab)?;
    if let Some(out) = config_out {
        mcfg.save(out)?;
    }
    let model = build_model(cfg, &mcfg, device)?;
    let t = &cfg.train;
    let mut opt = AdamW::new(
        weights::trainable(&model.vs),
        AdamWConfig {
            betas: t.betas,
            eps: t.eps,
            weight_decay: t.weight_decay,
        },
    );
    let (b, s, l) = (
        t.batch_size as i64,
        mcfg.vision_config.image_size as i64,
        mcfg.text_config.max_position_embeddings as i64,
    );
    let pixels = Tensor::rand([b, 3, s, s], (Kind::Float, device)) * 2.0 - 1.0;
    let ids = Tensor::randint(
        mcfg.text_config.vocab_size as i64,
        [b, l],
        (Kind::Int64, device),
    );
    let remat =
        crate::config::remat_blocks(&t.remat).map_err(crate::error::TrainerError::Config)?;
    let mut updates = Vec::new();
    let timing = timing::median_mean_ms(warmup, steps, || {
        let forward = || {
            palisade_model::autocast::bf16(device.is_cuda().then_some(device), || {
                model.loss(&pixels, &ids)
            })
            .map_err(crate::error::TrainerError::from)
        };
        let _ = with_remat(remat, forward, |l| l.backward())?;
        updates.push(timed_update(&mut opt, t.grad_clip, t.lr, device));
        Ok(())
    })?;
    let flops = flops::siglip_step(&mcfg, t.batch_size);
    let update = timing::median(&mut updates[warmup..]);
    Ok(StepBench::new(
        &model.vs,
        t.batch_size,
        steps,
        timing,
        update,
        flops,
    ))
}

/// A PaLI train-step benchmark (`bench pali-train-step`): the model, the step's sizes, timing.
#[derive(Debug, Clone, clap::Args)]
pub struct PaliStepBench {
    /// PaLI preset (`mu`, `tiny`, `pali3`).
    #[arg(long, default_value = "tiny")]
    pub preset: String,
    /// Vocabulary size.
    #[arg(long, default_value_t = 1024)]
    pub vocab: usize,
    /// Image resolution (default: the preset's).
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Examples per step.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Prompt tokens.
    #[arg(long, default_value_t = 16)]
    pub prompt_len: usize,
    /// Target tokens.
    #[arg(long, default_value_t = 16)]
    pub target_len: usize,
    /// Train the image encoder too (stage 2); by default it is frozen (stage 1, transfer).
    #[arg(long)]
    pub train_vision: bool,
    /// Timed steps.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Untimed warm-up steps.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// libtorch threads (0: all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// `cpu` or `cuda[:N]` (bf16 autocast on CUDA).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Activation checkpointing: `none`, `blocks` or `every_N` (as `train.remat`).
    #[arg(long, default_value = "none")]
    pub remat: String,
    /// Also write the model's config.json (for the PyTorch baseline).
    #[arg(long)]
    pub model_config_out: Option<std::path::PathBuf>,
}

/// Times PaLI training steps (forward, token cross-entropy, backward, clip, AdamW) on random
/// inputs, after untimed warm-up ones.
pub fn pali_train_step(shape: &PaliStepBench) -> Result<StepBench> {
    let mut cfg = PaliConfig::preset(&shape.preset, shape.vocab)?;
    if let Some(s) = shape.image_size {
        cfg.vision_config.image_size = s;
    }
    if let Some(out) = &shape.model_config_out {
        cfg.save(out)?;
    }
    let (steps, warmup) = (shape.steps, shape.warmup);
    let cfg = &cfg;
    set_threads(shape.threads);
    let device = parse_device(&shape.device, 0)?;
    tch::manual_seed(0);
    let model = palisade_model::pali::PaliModel::new(cfg, device)?;
    model.freeze_vision(!shape.train_vision);
    let mut opt = AdamW::new(
        weights::trainable(&model.vs),
        AdamWConfig {
            betas: [0.9, 0.999],
            eps: 1e-8,
            weight_decay: 1e-4,
        },
    );
    let (b, s) = (shape.batch as i64, cfg.vision_config.image_size as i64);
    let dev = (Kind::Float, device);
    let pixels = Tensor::rand([b, 3, s, s], dev) * 2.0 - 1.0;
    let vocab = cfg.text_config.vocab_size as i64;
    let ids = Tensor::randint_low(
        2,
        vocab,
        [b, shape.prompt_len as i64],
        (Kind::Int64, device),
    );
    let mask = ids.ones_like();
    let labels = Tensor::randint_low(
        2,
        vocab,
        [b, shape.target_len as i64],
        (Kind::Int64, device),
    );
    let remat =
        crate::config::remat_blocks(&shape.remat).map_err(crate::error::TrainerError::Config)?;
    let mut updates = Vec::new();
    let timing = timing::median_mean_ms(warmup, steps, || {
        let forward = || {
            palisade_model::autocast::bf16(device.is_cuda().then_some(device), || {
                model.loss(&pixels, &ids, &mask, &labels, 0.0)
            })
            .map_err(crate::error::TrainerError::from)
        };
        let _ = with_remat(remat, forward, |l| l.backward())?;
        updates.push(timed_update(&mut opt, 1.0, 1e-4, device));
        Ok(())
    })?;
    let flops = flops::pali_step(
        cfg,
        shape.batch,
        shape.prompt_len,
        shape.target_len,
        shape.train_vision,
    );
    let update = timing::median(&mut updates[warmup..]);
    Ok(StepBench::new(
        &model.vs,
        shape.batch,
        steps,
        timing,
        update,
        flops,
    ))
}

/// Clips the gradients, applies `opt` and clears them, waiting for the device; returns its ms.
fn timed_update(opt: &mut AdamW, clip: f64, lr: f64, device: tch::Device) -> f64 {
    let start = std::time::Instant::now();
    opt.clip_grad_norm(clip);
    opt.step(lr);
    opt.zero_grad();
    timing::sync(device);
    start.elapsed().as_secs_f64() * 1000.0
}

/// `N threads`, or nothing about threads on a GPU (they only launch kernels there).
fn threads_or_gpu(device: &str, threads: i32) -> String {
    if device.starts_with("cuda") {
        "GPU".into()
    } else {
        format!("{threads} threads")
    }
}
