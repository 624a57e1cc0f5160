//! The training loop, one flat function in named sections: set-up, resume, step, log,
//! checkpoint, evaluate.

use crate::batches::{BatchSource, SourceCursor};
use crate::checkpoint::{self, TrainState, EXPERIMENT_FILE, OPTIMIZER_FILE};
use crate::config::ExperimentConfig;
use crate::config::Stage;
use crate::error::{io_at, Result, TrainerError};
use crate::evaluate;
use crate::metrics::MetricsLog;
use crate::optimizer::{AdamW, AdamWConfig};
use crate::schedule::WarmupCosine;
use crate::setup;
use crate::stage::StageModel;
use indicatif::{ProgressBar, ProgressStyle};
use palisade_evaluator::siglip_eval::batch_tensors;
use palisade_evaluator::EvalReport;
use palisade_model::weights;
use palisade_sharding::{ProcessGroup, ReduceOp};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Config file written into every run folder.
pub const RUN_CONFIG_FILE: &str = "config.yaml";
/// Checkpoint folder inside a run folder.
pub const CHECKPOINT_DIR: &str = "checkpoints";

/// How this invocation of the trainer runs.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Run folder (overrides the config).
    pub run_dir: Option<PathBuf>,
    /// Continue from the newest checkpoint in the run folder.
    pub resume: bool,
    /// Stop (after checkpointing) once this many steps are done, as a preempted job would.
    pub stop_at_step: Option<u64>,
    /// Draw a progress bar on the terminal.
    pub progress: bool,
}

/// What a finished (or stopped) run reports.
#[derive(Debug)]
pub struct TrainSummary {
    /// The run folder.
    pub run_dir: PathBuf,
    /// Steps done.
    pub step: u64,
    /// Loss of the last step.
    pub last_loss: f64,
    /// Final evaluation, when the run completed and has held-out data.
    pub report: Option<EvalReport>,
}

/// Trains a SigLIP model as `cfg` describes, on every rank the launcher started.
pub fn train(cfg: &ExperimentConfig, opts: &TrainOptions) -> Result<TrainSummary> {
    // --- Process group: one process, or MPI when a launcher started several ranks -------------
    // (docs/distributed.md). Ranks whose configs differ are refused before any work.
    let group = palisade_sharding::init(palisade_sharding::backend_from_env()?)?;
    let result = palisade_sharding::check_same_config(&*group, &cfg.hash())
        .map_err(TrainerError::from)
        .and_then(|()| train_in_group(&*group, cfg, opts));
    if let Err(e) = &result {
        // A rank that stops alone would leave the others waiting in their next collective.
        group.abort(&e.to_string());
    }
    result
}

/// The training loop on this rank of `group`.
fn train_in_group(
    group: &dyn ProcessGroup,
    cfg: &ExperimentConfig,
    opts: &TrainOptions,
) -> Result<TrainSummary> {
    // --- Set-up: ranks, device, data, model -------------------------------------------------
    let (rank, world) = (group.rank(), group.world_size());
    let rank_info = palisade_sharding::discover()?;
    let device = setup::parse_device(&cfg.device, rank_info.local_rank)?;
    setup::set_threads(cfg.threads);
    let t = &cfg.train;
    if !t.batch_size.is_multiple_of(world) {
        return Err(TrainerError::Config(format!(
            "key train.batch_size: {} is not divisible by {world} ranks",
            t.batch_size
        )));
    }
    let run_dir = cfg.resolve_run_dir(opts.run_dir.as_deref());
    let ckpt_root = run_dir.join(CHECKPOINT_DIR);
    let resume_from = if opts.resume {
        checkpoint::latest(&ckpt_root)?
    } else {
        None
    };
    if !opts.resume && !checkpoint::list(&ckpt_root)?.is_empty() {
        return Err(TrainerError::Config(format!(
            "run folder {} already holds checkpoints: pass --resume to continue it, or choose another --run-dir",
            run_dir.display()
        )));
    }
    if rank == 0 {
        setup::ensure_synth_data(cfg)?;
        std::fs::create_dir_all(&run_dir).map_err(io_at(&run_dir))?;
        write_text_atomic(&run_dir.join(RUN_CONFIG_FILE), &cfg.to_yaml())?;
    }
    group.barrier()?;
    let tok = setup::tokenizer(cfg)?;
    // PaLI reads and writes boxes as location tokens.
    let tok = match cfg.stage {
        Stage::Siglip => tok,
        Stage::Pali => std::sync::Arc::new((*tok).clone().with_loc_tokens()),
    };
    let model = StageModel::build(cfg, &tok, device)?;
    let trainable = weights::trainable(model.vs());
    // Shallow handles to the same parameters, in name order, for the gradient all-reduce.
    let params: Vec<tch::Tensor> = trainable.iter().map(|(_, p)| p.shallow_clone()).collect();
    let mut opt = AdamW::new(
        trainable,
        AdamWConfig {
            betas: t.betas,
            eps: t.eps,
            weight_decay: t.weight_decay,
        },
    );
    let sched = WarmupCosine {
        peak: t.lr,
        warmup: t.warmup_steps,
        total: t.steps,
        min_ratio: t.min_lr_ratio,
    };
    let image_size = cfg.model.vision.resolve()?.image_size;
    let mut loader = BatchSource::train(
        cfg,
        &tok,
        image_size,
        cfg.data.text_len,
        t.batch_size / world,
        rank,
        world,
    )?;

    // --- Resume ---------------------------------------------------------------------------
    let mut step = 0u64;
    let mut examples_seen = 0u64;
    if let Some((_, dir)) = &resume_from {
        let state = checkpoint::read_state(dir)?;
        if state.config_hash != cfg.hash() {
            tracing::warn!(
                "resuming {} with a config that differs from the one that wrote it",
                dir.display()
            );
        }
        weights::load_into(model.vs(), &dir.join(palisade_model::siglip::WEIGHTS_FILE))?;
        let opt_path = dir.join(OPTIMIZER_FILE);
        opt.load_state(weights::read(&opt_path)?, state.step, &opt_path)?;
        if state.world_size == world {
            let cursor = state
                .data_cursors
                .get(rank)
                .ok_or_else(|| TrainerError::Checkpoint {
                    path: dir.clone(),
                    msg: format!("no data cursor for rank {rank}"),
                })?;
            loader.seek(cursor)?;
        } else {
            // Another number of ranks: the rest of the epoch is dealt out afresh, no row read
            // twice or skipped (the global batch stays train.batch_size).
            if state.data_cursors.len() != state.world_size {
                return Err(TrainerError::Checkpoint {
                    path: dir.clone(),
                    msg: format!(
                        "holds {} data cursors for {} ranks",
                        state.data_cursors.len(),
                        state.world_size
                    ),
                });
            }
            tracing::info!(
                "resuming {} ranks' checkpoint on {world} ranks",
                state.world_size
            );
            loader.seek_resharded(&state.data_cursors)?;
        }
        step = state.step;
        examples_seen = state.examples_seen;
        tracing::info!("resumed from {} at step {step}", dir.display());
    }
    // Data parallelism: every rank starts from rank 0's parameters (a no-op for one rank).
    let bucket_bytes = (t.grad_bucket_mb * (1 << 20) as f64) as usize;
    palisade_sharding::broadcast_bucketed(group, &mut all_params(model.vs()), 0, bucket_bytes)?;
    let mut metrics = if rank == 0 {
        Some(MetricsLog::open(
            &run_dir,
            resume_from.as_ref().map(|_| step),
        )?)
    } else {
        None
    };
    let bar = progress_bar(opts.progress && rank == 0, t.steps, step);

    // --- Loop -----------------------------------------------------------------------------
    let mut last_loss = f64::NAN;
    let mut skipped_total = 0usize; // unreadable rows replaced by the loader, this invocation
    let mut window = (Instant::now(), 0u64, 0.0f64); // since last log: start, examples, data wait
    let last_step = opts.stop_at_step.map_or(t.steps, |s| s.min(t.steps));
    while step < last_step {
        let waited = Instant::now();
        let batch = loader.next_batch(t.batch_size / world)?;
        window.2 += waited.elapsed().as_secs_f64();
        skipped_total += batch.skipped;
        // Several ranks: the distributed sigmoid loss; the logged value is the global mean.
        let loss = step_loss(&model, group, &batch, device)?;
        last_loss = global_mean(group, loss.double_value(&[]))?;
        if !last_loss.is_finite() {
            return Err(TrainerError::Numerics {
                step,
                msg: format!("loss is {last_loss}; checkpoints so far are intact"),
            });
        }
        loss.backward();
        // Data parallelism averages gradients here, in flat buckets (a no-op for one rank).
        let mut grads: Vec<tch::Tensor> = params
            .iter()
            .map(|p| p.grad())
            .filter(|g| g.defined())
            .collect();
        if world > 1 && grads.len() != params.len() {
            // Ranks must agree on the bucket layout; a parameter without a gradient breaks it.
            return Err(TrainerError::Numerics {
                step,
                msg: "a trainable parameter got no gradient; data parallelism needs all".into(),
            });
        }
        palisade_sharding::all_reduce_bucketed(group, &mut grads, ReduceOp::Avg, bucket_bytes)?;
        let grad_norm = opt.clip_grad_norm(t.grad_clip);
        let lr = sched.lr(step);
        opt.step(lr);
        opt.zero_grad();
        step += 1;
        examples_seen += t.batch_size as u64;
        window.1 += t.batch_size as u64;
        bar.set_position(step);

        // --- Log ------------------------------------------------------------------------
        if step.is_multiple_of(t.log_every) || step == last_step {
            let secs = window.0.elapsed().as_secs_f64().max(1e-9);
            let mut values = vec![
                ("train/loss".to_string(), last_loss),
                ("train/lr".to_string(), lr),
                ("train/grad_norm".to_string(), grad_norm),
                ("train/examples_per_sec".to_string(), window.1 as f64 / secs),
                (
                    "train/data_wait_ms".to_string(),
                    1000.0 * window.2 / (window.1 as f64 / t.batch_size as f64).max(1.0),
                ),
                (
                    "train/skipped_examples".to_string(),
                    world as f64 * global_mean(group, skipped_total as f64)?,
                ),
            ];
            values.extend(model.scalars());
            bar.set_message(format!("loss {last_loss:.4}"));
            tracing::debug!(step, loss = last_loss, lr, grad_norm, "train");
            if let Some(m) = metrics.as_mut() {
                m.log(step, "train", &values)?;
                m.flush()?;
            }
            window = (Instant::now(), 0, 0.0);
        }

        // --- Checkpoint ------------------------------------------------------------------
        if step.is_multiple_of(t.checkpoint_every) || step == last_step {
            let state = TrainState {
                step,
                examples_seen,
                data_cursors: gather_cursors(group, &loader.cursor())?,
                seed: cfg.seed,
                config_hash: cfg.hash(),
                world_size: world,
            };
            if rank == 0 {
                let dir = checkpoint::write(&ckpt_root, &state, t.keep_last, |d| {
                    model.save(d)?;
                    weights::write_atomic(&opt.state_tensors(), &d.join(OPTIMIZER_FILE))?;
                    write_text_atomic(&d.join(EXPERIMENT_FILE), &cfg.to_yaml())
                })?;
                tracing::info!("checkpoint {}", dir.display());
            }
            group.barrier()?;
        }

        // --- Periodic evaluation -----------------------------------------------------------
        if t.eval_every > 0 && step.is_multiple_of(t.eval_every) && step < t.steps {
            if let Some(r) = evaluate::evaluate_stage(cfg, &model, &tok, group, Some(step), None)? {
                if let Some(m) = metrics.as_mut() {
                    m.log(step, "eval", &r.scalars())?;
                }
            }
        }
    }
    bar.finish_and_clear();

    // --- Final evaluation and report -----------------------------------------------------------
    let mut report = None;
    if step == t.steps {
        let report_dir = run_dir.join(evaluate::REPORT_DIR);
        report = evaluate::evaluate_stage(cfg, &model, &tok, group, Some(step), Some(&report_dir))?;
        if let (Some(r), 0) = (&report, rank) {
            evaluate::write_report(cfg, r, &run_dir)?;
            if let Some(m) = metrics.as_mut() {
                m.log(step, "eval", &r.scalars())?;
                m.flush()?;
            }
            // The HTML page (curves, tables, examples), as `palisade report` would rebuild it.
            palisade_evaluator::html::write_run_report(&run_dir)?;
        }
    }
    Ok(TrainSummary {
        run_dir,
        step,
        last_loss,
        report,
    })
}

/// This step's loss. SigLIP on several ranks: this rank's share of the distributed sigmoid
/// loss over the global batch (the mean over ranks is the global loss); otherwise the stage's
/// loss of the local batch (data parallelism averages it with the gradients).
fn step_loss(
    model: &StageModel,
    group: &dyn ProcessGroup,
    batch: &palisade_data::Batch,
    device: tch::Device,
) -> Result<tch::Tensor> {
    let siglip = model.siglip().filter(|_| group.world_size() > 1);
    let Some(m) = siglip else {
        return model.loss(batch, device);
    };
    let (pixels, ids) = batch_tensors(batch, device);
    let (zimg, ztxt) = palisade_model::autocast::bf16(device.is_cuda(), || {
        Ok::<_, palisade_model::ModelError>((m.embed_images(&pixels)?, m.embed_texts(&ids)?))
    })?;
    Ok(palisade_model::distributed_loss::distributed_sigmoid_loss(
        group,
        &zimg,
        &ztxt,
        &m.logit_scale,
        &m.logit_bias,
    )?)
}

/// Mean of `x` over ranks.
fn global_mean(group: &dyn ProcessGroup, x: f64) -> Result<f64> {
    if group.world_size() == 1 {
        return Ok(x);
    }
    let mut t = tch::Tensor::from(x);
    group.all_reduce(&mut t, ReduceOp::Avg)?;
    Ok(t.double_value(&[]))
}

/// Every rank's data cursor, in rank order (for `state.json`).
fn gather_cursors(group: &dyn ProcessGroup, mine: &SourceCursor) -> Result<Vec<SourceCursor>> {
    let json = serde_json::to_vec(mine).map_err(|e| TrainerError::Config(e.to_string()))?;
    palisade_sharding::all_gather_bytes(group, &json)?
        .iter()
        .enumerate()
        .map(|(r, b)| {
            serde_json::from_slice(b)
                .map_err(|e| TrainerError::Config(format!("data cursor of rank {r}: {e}")))
        })
        .collect()
}

/// Every variable of the model, sorted by name so all ranks list them in the same order.
fn all_params(vs: &tch::nn::VarStore) -> Vec<tch::Tensor> {
    let mut named: Vec<(String, tch::Tensor)> = vs.variables().into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named.into_iter().map(|(_, t)| t).collect()
}

fn progress_bar(enabled: bool, total: u64, pos: u64) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps {per_sec} eta {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position(pos);
    bar
}

/// Writes `text` to `path` through a temporary file and a rename.
pub fn write_text_atomic(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(io_at(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_at(path))
}
