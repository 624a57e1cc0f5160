//! The training loop, one flat function in named sections: set-up, resume, step, log,
//! checkpoint, evaluate. What differs between stage kinds comes from the stage registry
//! (`stages/`), how the job spans ranks from the parallelism layer (`parallel/`).

use crate::accumulate::StepPlan;
use crate::checkpoint::{self, Keep, TrainState, EXPERIMENT_FILE, OPTIMIZER_FILE};
use crate::config::ExperimentConfig;
use crate::device::{parse_device, set_threads};
use crate::ema::{Ema, EMA_FILE};
use crate::error::{io_at, Result, TrainerError};
use crate::job::run_on_mesh;
use crate::metrics::MetricsLog;
use crate::optimizer;
use crate::parallel::{
    clip_owned_grad_norm, DataParallel, FullShards, Mesh, OptimizerShards, TensorParallel,
};
use crate::preempt::PreemptGuard;
use crate::preflight;
use crate::resume::{self, Start};
use crate::schedule::{self as lr_schedule, Schedule};
use crate::stages;
use indicatif::{ProgressBar, ProgressStyle};
use palisade_data::{RankShare, TrainSource};
use palisade_evaluator::{EvalReport, RunFolder};
use palisade_model::autocast::Precision;
use palisade_model::{folder::WEIGHTS_FILE, weights};
use palisade_sharding::{watchdog::slow_phase, ReduceOp};
use std::path::PathBuf;
use std::time::Instant;
use tch::Kind;

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
    /// Resume even when keys that change the trajectory differ from the checkpoint's config.
    pub allow_config_change: bool,
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
    /// How the invocation ended.
    pub end: End,
}

/// How an invocation of the trainer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// It reached `train.steps` (or `--stop-at-step`).
    Done,
    /// The run had already finished; nothing was changed.
    AlreadyFinished,
    /// A preemption signal arrived; the checkpoint of `step` was written.
    Preempted(i32),
}

/// Trains the model of `cfg`'s stage as it describes, on every rank the launcher started.
pub fn train(cfg: &ExperimentConfig, opts: &TrainOptions) -> Result<TrainSummary> {
    // One process, or every rank of an mpirun / srun / `palisade launch` job
    // (docs/distributed.md); ranks whose configs differ are refused before any work.
    run_on_mesh(cfg, |mesh| train_on(mesh, cfg, opts))
}

/// The training loop on this rank of `mesh`.
pub(crate) fn train_on(
    mesh: &Mesh,
    cfg: &ExperimentConfig,
    opts: &TrainOptions,
) -> Result<TrainSummary> {
    // --- Set-up: ranks, device, data, model -------------------------------------------------
    // The job's ranks as data-parallel × tensor-parallel (parallel.tp); tensor-parallel ranks
    // see the same data, so batches and data cursors go by the data-parallel rank.
    let mesh = &mesh.with_tp(cfg.parallel.tp)?;
    let rank = mesh.rank();
    let (data_rank, world) = (mesh.dp().rank(), mesh.dp().world_size());
    let rank_info = palisade_sharding::discover()?;
    let cfg = &crate::device::per_rank(cfg, rank_info.local_world);
    // From here a preemption signal stops the run after its next step, with a checkpoint.
    let preempt = PreemptGuard::install(&cfg.train.preempt_signals)?;
    let kind = stages::kind_of(cfg)?;
    let device = parse_device(&cfg.device, rank_info.local_rank)?;
    set_threads(cfg.threads);
    let t = &cfg.train;
    if !t.batch_size.is_multiple_of(world) {
        return Err(TrainerError::Config(format!(
            "key train.batch_size: {} is not divisible by {world} data-parallel ranks",
            t.batch_size
        )));
    }
    let per_rank = t.batch_size / world;
    if !per_rank.is_multiple_of(t.accum_steps) {
        return Err(TrainerError::Config(format!(
            "key train.accum_steps: {} does not divide the {per_rank} examples per rank \
             (train.batch_size {} over {world} ranks)",
            t.accum_steps, t.batch_size
        )));
    }
    let precision = cfg.precision(device);
    let plan = StepPlan {
        micro: t.accum_steps,
        remat: crate::config::remat_blocks(&t.remat).map_err(TrainerError::Config)?,
        autocast: precision.autocast_on(device),
    };
    let run = RunFolder::new(cfg.resolve_run_dir(opts.run_dir.as_deref()));
    let ckpt_root = run.checkpoints();
    // One writer per run folder, for the run's life: rank 0 holds the lock.
    let _lock = if rank == 0 {
        Some(preflight::lock_run(&run)?)
    } else {
        None
    };
    let resume_from =
        match resume::decide(&run, cfg, opts.resume, opts.allow_config_change, rank == 0)? {
            Start::Fresh => None,
            Start::From { dir, state } => Some((dir, state)),
            Start::Finished { step } => {
                return Ok(TrainSummary {
                    run_dir: run.root,
                    step,
                    last_loss: f64::NAN,
                    report: None,
                    end: End::AlreadyFinished,
                });
            }
        };
    if rank == 0 {
        kind.ensure_synth_data(cfg)?;
        std::fs::create_dir_all(&run.root).map_err(io_at(&run.root))?;
        palisade_files::write(&run.config(), cfg.to_yaml())?;
    }
    mesh.world().barrier()?;
    let model = kind.build(cfg, device)?;
    let frozen = optimizer::freeze(model.vs(), &t.freeze)?;
    if frozen > 0 && rank == 0 {
        tracing::info!("train.freeze: {frozen} tensors frozen");
    }
    let ckpt_bytes = preflight::checkpoint_bytes(model.vs());
    if rank == 0 {
        preflight::check_memory(model.vs(), device)?;
    }
    let bucket_bytes = (t.grad_bucket_mb * (1 << 20) as f64) as usize;
    // Resumed weights go in whole, before any parallelism splits or shards them.
    if let Some((dir, _)) = &resume_from {
        weights::load_into(model.vs(), &dir.join(WEIGHTS_FILE))?;
    }
    // With parallel.tp each rank keeps its slice of every block's heads and MLP units.
    // With parallel.sequence_parallel the towers' blocks also keep 1 / tp of the tokens.
    let tp = TensorParallel::new(
        model.vs(),
        mesh,
        bucket_bytes,
        cfg.parallel.sequence_parallel,
    )?;
    if let Some(tp) = &tp {
        tracing::info!(
            "parallel.tp: {} ranks split {} tensors (rank {rank} is data-parallel rank {data_rank})",
            mesh.tp_size(),
            tp.split_count()
        );
    }
    let dp = DataParallel::new(model.vs(), bucket_bytes);
    let choice = optimizer::Choice {
        name: &t.optimizer,
        adamw: optimizer::AdamWConfig {
            betas: t.betas,
            eps: t.eps,
            weight_decay: t.weight_decay,
        },
        adafactor: t.adafactor,
    };
    // With parallel.shard: optimizer each rank updates, and keeps the state of, its share.
    let trainable = weights::trainable(model.vs());
    let (units, full) = (model.units(), cfg.parallel.shard == "full");
    let mut shards = OptimizerShards::new(
        &trainable,
        mesh,
        cfg.parallel.shard != "none",
        bucket_bytes,
        |n| full && units.iter().any(|u| u.contains(n)),
    );
    // With parallel.shard: full the blocks' parameters live on their owners too, gathered per
    // remat segment (parallel/fsdp.rs); the rest stays whole, as with `optimizer`.
    let fsdp = if full && shards.is_sharded() {
        let f = FullShards::new(model.vs(), &units, &shards, mesh, bucket_bytes)?;
        shards.gather_on_use(|n| f.holds(n));
        let (mine, all) = f.kept_elements();
        tracing::info!(
            "parallel.shard: full: rank {rank} keeps {mine} of {all} block parameter elements"
        );
        Some(f)
    } else {
        None
    };
    let dp = match &fsdp {
        Some(f) => dp.except(|n| f.holds(n)),
        None => dp,
    };
    if shards.is_sharded() {
        let (mine, all) = shards.owned_elements();
        tracing::info!(
            "parallel.shard: optimizer: rank {rank} keeps the optimizer state of {mine} of {all} \
             parameter elements"
        );
    }
    let owned = shards.owned(trainable);
    let (owned_names, owned_params): (Vec<String>, Vec<tch::Tensor>) = owned
        .iter()
        .map(|(n, p)| (n.clone(), p.shallow_clone()))
        .unzip();
    let mut opt = if precision == Precision::Bf16 {
        // float32 masters of this rank's share, taken before the model is rounded to bf16.
        let masters = optimizer::masters(&owned);
        weights::set_float_kind(model.vs(), Kind::BFloat16);
        let inner = optimizer::build(choice, &t.lr_mults, masters, shards.names())?;
        Box::new(optimizer::MasterWeights::new(inner, owned))
    } else {
        optimizer::build(choice, &t.lr_mults, owned, shards.names())?
    };
    if rank == 0 {
        tracing::info!("train.precision: {}", precision.name());
    }
    let mut ema = (t.ema_decay > 0.0).then(|| Ema::new(model.vs(), t.ema_decay));
    let sched = Schedule {
        kind: lr_schedule::Kind::named(&t.schedule).unwrap_or(lr_schedule::Kind::Cosine),
        peak: t.lr,
        warmup: t.warmup_steps,
        total: t.steps,
        min_ratio: t.min_lr_ratio,
        timescale: t.timescale,
        cooldown: t.cooldown_steps,
    };
    let share = RankShare {
        batch_size: per_rank,
        rank: data_rank,
        world,
    };
    let mut loader = model.train_source(cfg, share)?;

    // --- Resume ---------------------------------------------------------------------------
    let mut step = 0u64;
    let mut examples_seen = 0u64;
    if let Some((dir, state)) = &resume_from {
        let mut state_tensors = shards.read_owned_state(dir)?;
        if let Some(tp) = &tp {
            state_tensors = tp.slice_state(state_tensors, dir)?;
        }
        opt.load_state(state_tensors, state.step, &dir.join(OPTIMIZER_FILE))?;
        if let Some(e) = ema.as_mut() {
            let p = dir.join(EMA_FILE);
            let mut shadow = weights::read(&p)?;
            if let Some(tp) = &tp {
                shadow = tp.slice_named(shadow, &p)?;
            }
            e.load(shadow, &p)?;
        }
        resume_data(&mut *loader, state, dir, data_rank, world)?;
        step = state.step;
        examples_seen = state.examples_seen;
        tracing::info!("resumed from {} at step {step}", dir.display());
    }
    // Data parallelism: every rank starts from rank 0's parameters (a no-op for one rank).
    dp.broadcast_parameters(mesh, model.vs())?;
    // From here each rank holds only its own block parameters whole.
    if let Some(f) = &fsdp {
        f.release_all();
    }
    let mut metrics = if rank == 0 {
        Some(MetricsLog::open(&run, resume_from.as_ref().map(|_| step))?)
    } else {
        None
    };
    let bar = progress_bar(opts.progress && rank == 0, t.steps, step);
    let mut end = End::Done;

    // --- Loop -----------------------------------------------------------------------------
    let mut last_loss = f64::NAN;
    let mut skipped_total = 0usize; // unreadable rows replaced by the loader, this invocation
    let mut window = (Instant::now(), 0u64, 0.0f64); // since last log: start, examples, data wait
    let last_step = opts.stop_at_step.map_or(t.steps, |s| s.min(t.steps));
    while step < last_step {
        let waited = Instant::now();
        let batch = loader.next_batch(per_rank)?;
        window.2 += waited.elapsed().as_secs_f64();
        skipped_total += batch.skipped;
        // Gradients of this rank's share: train.accum_steps micro-batches, blocks checkpointed
        // per train.remat.
        let loss = match (&fsdp, &tp) {
            (Some(f), Some(tp)) => {
                f.during(|| tp.training(|| model.backward(&batch, mesh, plan)))?
            }
            (Some(f), None) => f.during(|| model.backward(&batch, mesh, plan))?,
            (None, Some(tp)) => tp.training(|| model.backward(&batch, mesh, plan))?,
            (None, None) => model.backward(&batch, mesh, plan)?,
        };
        // The preemption flag rides with the loss, so every rank stops after the same step.
        let signal = preempt.received().unwrap_or(0) as f64;
        let [mean_loss, any_signal] = global_means(mesh, [loss, signal])?;
        last_loss = mean_loss;
        let preempted = any_signal > 0.0;
        if !last_loss.is_finite() {
            return Err(TrainerError::Numerics {
                step,
                msg: format!("loss is {last_loss}; checkpoints so far are intact"),
            });
        }
        dp.average_gradients(mesh, step)?;
        // The global norm however state is split: from whole gradients on every rank, (full)
        // from each rank's owned ones, (tp) from slices summed over the group, or both.
        let grad_norm = match (&fsdp, &tp) {
            (Some(_), tp) => {
                let sq = match tp {
                    Some(tp) => tp.grad_sq(&owned_names, &owned_params)?,
                    None => optimizer::grad_norm(&owned_params).powi(2),
                };
                clip_owned_grad_norm(mesh.dp(), &owned_params, sq, t.grad_clip)?
            }
            (None, Some(tp)) => tp.clip_grad_norm(shards.names(), shards.params(), t.grad_clip)?,
            (None, None) => optimizer::clip_grad_norm(shards.params(), t.grad_clip),
        };
        let lr = sched.lr(step);
        opt.step(lr);
        shards.broadcast_updates(mesh)?;
        if let Some(e) = ema.as_mut() {
            e.update();
        }
        optimizer::zero_grad(shards.params());
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
                    world as f64 * global_mean(mesh, skipped_total as f64)?,
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
        if step.is_multiple_of(t.checkpoint_every) || step == last_step || preempted {
            // The other ranks wait while rank 0 writes: a slow phase for the watchdog.
            let _slow = slow_phase();
            // The model folder is whole: every rank takes part in gathering it.
            if let Some(f) = &fsdp {
                f.gather_all()?;
            }
            if let Some(tp) = &tp {
                tp.gather_all()?;
            }
            let state = TrainState {
                step,
                examples_seen,
                data_cursors: gather_cursors(mesh, &loader.position())?,
                seed: cfg.seed,
                config_hash: cfg.hash(),
                world_size: world,
            };
            // The moving average whole, from every tensor-parallel rank's slices.
            let shadow = match (&ema, &tp) {
                (Some(e), Some(tp)) => Some(tp.gather_named(e.tensors())?),
                (Some(e), None) if rank == 0 => Some(e.tensors()),
                _ => None,
            };
            // One optimizer file, or one shard per rank and an index: resumable anywhere.
            let staging = ckpt_root.join(format!(".optimizer-step-{step}"));
            let opt_state = match &tp {
                // Whole state from every rank's slices, gathered by all of them.
                Some(tp) => {
                    let whole = tp.gather_state(opt.state_tensors())?;
                    shards.save_state(mesh, &staging, || whole)?
                }
                None => shards.save_state(mesh, &staging, || opt.state_tensors())?,
            };
            // Rank 0 of the job writes the folder (each tensor-parallel group has a rank 0 of
            // its data-parallel group).
            if let Some(opt_state) = opt_state.filter(|_| rank == 0) {
                let keep = Keep {
                    last: t.keep_last,
                    prune_first: t.prune_before_write,
                    bytes: ckpt_bytes,
                };
                let written = checkpoint::write(&ckpt_root, &state, keep, |d| {
                    model.save(d)?;
                    opt_state.place(d)?;
                    if let Some(s) = &shadow {
                        weights::write_atomic(s, &d.join(EMA_FILE))?;
                    }
                    Ok(palisade_files::write(
                        &d.join(EXPERIMENT_FILE),
                        cfg.to_yaml(),
                    )?)
                });
                opt_state.clean_up();
                // Not inside the log macro: its arguments go unevaluated below its level.
                let written = written?;
                tracing::info!("checkpoint {}", written.display());
            }
            drop(shadow);
            mesh.world().barrier()?;
            // Back to slices, then (full) the slices this rank does not own freed.
            if let Some(tp) = &tp {
                tp.slice_all();
            }
            if let Some(f) = &fsdp {
                f.release_all();
            }
        }
        if preempted {
            let sig = preempt.received().unwrap_or(libc::SIGTERM);
            if rank == 0 {
                tracing::warn!(
                    "preempted (signal {sig}): checkpoint of step {step} written; continue with --resume"
                );
            }
            end = End::Preempted(sig);
            break;
        }

        // --- Periodic evaluation -----------------------------------------------------------
        if t.eval_every > 0 && step.is_multiple_of(t.eval_every) && step < t.steps {
            let _slow = slow_phase();
            let r = evaluating(&fsdp, &tp, || model.evaluate(cfg, mesh, Some(step), None))?;
            if let Some(r) = r {
                if let Some(m) = metrics.as_mut() {
                    m.log(step, "eval", &r.scalars())?;
                }
            }
            if let Some(e) = &ema {
                let r = e.with_shadow(|| {
                    evaluating(&fsdp, &tp, || model.evaluate(cfg, mesh, Some(step), None))
                })?;
                if let (Some(r), Some(m)) = (r, metrics.as_mut()) {
                    m.log(step, "eval_ema", &r.scalars())?;
                }
            }
        }
    }
    bar.finish_and_clear();

    // --- Final evaluation and report -----------------------------------------------------------
    let mut report = None;
    if step == t.steps && end == End::Done {
        let _slow = slow_phase();
        report = evaluating(&fsdp, &tp, || {
            model.evaluate(cfg, mesh, Some(step), Some(&run.report()))
        })?;
        if let (Some(r), 0) = (&report, rank) {
            r.write(&run.report(), &r.title(&cfg.name))?;
            if let Some(m) = metrics.as_mut() {
                m.log(step, "eval", &r.scalars())?;
                m.flush()?;
            }
            // The HTML page (curves, tables, examples), as `palisade report` would rebuild it.
            palisade_evaluator::html::write_run_report(&run.root)?;
        }
        // The moving average, evaluated the same way into report/ema/.
        if let Some(e) = &ema {
            let dir = run.report().join("ema");
            let r = e.with_shadow(|| {
                evaluating(&fsdp, &tp, || {
                    model.evaluate(cfg, mesh, Some(step), Some(&dir))
                })
            })?;
            if let (Some(r), 0) = (r, rank) {
                r.write(
                    &dir,
                    &format!("{} (EMA {})", r.title(&cfg.name), t.ema_decay),
                )?;
                if let Some(m) = metrics.as_mut() {
                    m.log(step, "eval_ema", &r.scalars())?;
                    m.flush()?;
                }
            }
        }
    }
    // Per rank: what sharding and remat buy shows here.
    tracing::info!(
        "rank {rank}: peak resident memory {:.0} MiB",
        preflight::peak_rss_mib()
    );
    Ok(TrainSummary {
        run_dir: run.root,
        step,
        last_loss,
        report,
        end,
    })
}

/// Evaluation `f` with the model as it evaluates: every parameter whole on every rank with
/// `parallel.shard: full` (gathered for it), on the tensor-parallel slices with `parallel.tp`
/// (both: the slices gathered over the data-parallel ranks).
fn evaluating<T>(
    fsdp: &Option<FullShards>,
    tp: &Option<TensorParallel>,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    match (fsdp, tp) {
        (Some(s), Some(tp)) => s.gathered(|| tp.during(f)),
        (Some(s), None) => s.gathered(f),
        (None, Some(tp)) => tp.during(f),
        (None, None) => f(),
    }
}

/// Moves `loader` to where the checkpoint in `dir` left this rank: its own cursor on the same
/// number of ranks; on another number, the rest of the epoch dealt out afresh from every rank's
/// cursor, no row read twice or skipped (the global batch stays train.batch_size).
fn resume_data(
    loader: &mut dyn TrainSource,
    state: &TrainState,
    dir: &std::path::Path,
    rank: usize,
    world: usize,
) -> Result<()> {
    if state.world_size == world {
        let cursor = state
            .data_cursors
            .get(rank)
            .ok_or_else(|| TrainerError::Checkpoint {
                path: dir.to_path_buf(),
                msg: format!("no data cursor for rank {rank}"),
            })?;
        return Ok(loader.seek(cursor)?);
    }
    if state.data_cursors.len() != state.world_size {
        return Err(TrainerError::Checkpoint {
            path: dir.to_path_buf(),
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
    Ok(loader.seek_resharded(&state.data_cursors)?)
}

/// Mean of `x` over ranks.
fn global_mean(mesh: &Mesh, x: f64) -> Result<f64> {
    Ok(global_means(mesh, [x])?[0])
}

/// Means of each of `xs` over ranks, in one reduction.
fn global_means<const N: usize>(mesh: &Mesh, xs: [f64; N]) -> Result<[f64; N]> {
    let group = mesh.world();
    if group.world_size() == 1 {
        return Ok(xs);
    }
    let mut t = tch::Tensor::from_slice(&xs);
    group.all_reduce(&mut t, ReduceOp::Avg)?;
    let mut out = xs;
    for (i, o) in out.iter_mut().enumerate() {
        *o = t.double_value(&[i as i64]);
    }
    Ok(out)
}

/// Every data-parallel rank's data cursor, in rank order (for `state.json`).
fn gather_cursors(mesh: &Mesh, mine: &serde_json::Value) -> Result<Vec<serde_json::Value>> {
    let json = serde_json::to_vec(mine).map_err(|e| TrainerError::Config(e.to_string()))?;
    palisade_sharding::all_gather_bytes(mesh.dp(), &json)?
        .iter()
        .enumerate()
        .map(|(r, b)| {
            serde_json::from_slice(b)
                .map_err(|e| TrainerError::Config(format!("data cursor of rank {r}: {e}")))
        })
        .collect()
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
