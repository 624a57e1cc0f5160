//! `bench train-step`: times forward + backward + clip + AdamW on random inputs of the
//! configured sizes, excluding start-up and warm-up steps.

use crate::config::ExperimentConfig;
use crate::error::Result;
use crate::optimizer::{AdamW, AdamWConfig};
use crate::setup;
use palisade_model::weights;
use serde::Serialize;
use tch::{Kind, Tensor};

/// Timings of one benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct StepBench {
    /// Model parameters.
    pub params: i64,
    /// Pairs per step.
    pub batch_size: usize,
    /// libtorch threads.
    pub threads: i32,
    /// Timed steps.
    pub steps: usize,
    /// Median milliseconds per step.
    pub ms_per_step_median: f64,
    /// Mean milliseconds per step.
    pub ms_per_step_mean: f64,
    /// Image-text pairs per second at the median.
    pub pairs_per_sec: f64,
}

impl StepBench {
    /// The record of `steps` timed steps of a model with variables `vs`.
    fn new(
        vs: &tch::nn::VarStore,
        batch_size: usize,
        steps: usize,
        median: f64,
        mean: f64,
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
            pairs_per_sec: batch_size as f64 * 1000.0 / median,
        }
    }
}

/// Runs `warmup` untimed and `steps` timed training steps.
pub fn train_step(
    cfg: &ExperimentConfig,
    vocab: usize,
    warmup: usize,
    steps: usize,
) -> Result<StepBench> {
    let device = setup::parse_device(&cfg.device, 0)?;
    setup::set_threads(cfg.threads);
    let mcfg = setup::model_config(cfg, vocab)?;
    let model = setup::build_model(cfg, &mcfg, device)?;
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
    let (median, mean) = crate::timing::median_mean_ms(warmup, steps, || {
        let loss = palisade_model::autocast::bf16(device.is_cuda(), || model.loss(&pixels, &ids))?;
        loss.backward();
        opt.clip_grad_norm(t.grad_clip);
        opt.step(t.lr);
        opt.zero_grad();
        if device.is_cuda() {
            tch::Cuda::synchronize(0);
        }
        Ok(())
    })?;
    Ok(StepBench::new(&model.vs, t.batch_size, steps, median, mean))
}

/// Sizes of a PaLI train-step benchmark.
#[derive(Debug, Clone, Copy)]
pub struct PaliStepShape {
    /// Examples per step.
    pub batch: usize,
    /// Prompt tokens.
    pub prompt_len: usize,
    /// Target tokens.
    pub target_len: usize,
    /// Freeze the image encoder (stage 1, transfer).
    pub freeze_vision: bool,
}

/// Times `steps` PaLI training steps (forward, token cross-entropy, backward, clip, AdamW) on
/// random inputs, after `warmup` untimed ones.
pub fn pali_train_step(
    cfg: &palisade_model::pali::PaliConfig,
    shape: PaliStepShape,
    threads: usize,
    warmup: usize,
    steps: usize,
) -> Result<StepBench> {
    setup::set_threads(threads);
    tch::manual_seed(0);
    let model = palisade_model::pali::PaliModel::new(cfg, tch::Device::Cpu)?;
    model.freeze_vision(shape.freeze_vision);
    let mut opt = AdamW::new(
        weights::trainable(&model.vs),
        AdamWConfig {
            betas: [0.9, 0.999],
            eps: 1e-8,
            weight_decay: 1e-4,
        },
    );
    let (b, s) = (shape.batch as i64, cfg.vision_config.image_size as i64);
    let dev = (Kind::Float, tch::Device::Cpu);
    let pixels = Tensor::rand([b, 3, s, s], dev) * 2.0 - 1.0;
    let vocab = cfg.text_config.vocab_size as i64;
    let ids = Tensor::randint_low(
        2,
        vocab,
        [b, shape.prompt_len as i64],
        (Kind::Int64, tch::Device::Cpu),
    );
    let mask = ids.ones_like();
    let labels = Tensor::randint_low(
        2,
        vocab,
        [b, shape.target_len as i64],
        (Kind::Int64, tch::Device::Cpu),
    );
    let (median, mean) = crate::timing::median_mean_ms(warmup, steps, || {
        model.loss(&pixels, &ids, &mask, &labels, 0.0)?.backward();
        opt.clip_grad_norm(1.0);
        opt.step(1e-4);
        opt.zero_grad();
        Ok(())
    })?;
    Ok(StepBench::new(&model.vs, shape.batch, steps, median, mean))
}
