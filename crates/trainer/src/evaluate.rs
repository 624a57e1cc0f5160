//! Evaluating a model folder on the held-out data an experiment names (`palisade eval`), on
//! every rank the launcher started: each reads its share of the rows (with `parallel.tp`,
//! each tensor-parallel group decodes its share together on its slices of the model), every
//! rank gets the whole report, rank 0 writes it.

use crate::config::ExperimentConfig;
use crate::device::{parse_device, set_threads};
use crate::error::{Result, TrainerError};
use crate::job::run_on_mesh;
use crate::parallel::TensorParallel;
use crate::stages;
use palisade_evaluator::EvalReport;
use std::path::Path;

/// What an evaluation produced, and whether this rank is the one to print it.
#[derive(Debug)]
pub struct Evaluated {
    /// The report (the same on every rank).
    pub report: EvalReport,
    /// Its title.
    pub title: String,
    /// Whether this is rank 0.
    pub lead: bool,
}

/// Evaluates the model folder `checkpoint` as `cfg`'s stage kind on its held-out data; with
/// `out`, rank 0 writes `eval.json`, `eval.md` and example images there.
pub fn evaluate(
    cfg: &ExperimentConfig,
    checkpoint: &Path,
    out: Option<&Path>,
) -> Result<Evaluated> {
    let rank = palisade_sharding::discover()?;
    let cfg = &crate::device::per_rank(cfg, rank.local_world);
    set_threads(cfg.threads);
    run_on_mesh(cfg, |mesh| {
        // parallel.tp: each rank keeps its slices and the group decodes together.
        let mesh = &mesh.with_tp(cfg.parallel.tp)?;
        let kind = stages::kind_of(cfg)?;
        let device = parse_device(&cfg.device, rank.local_rank)?;
        let model = kind.load(cfg, checkpoint, device)?;
        let bucket_bytes = (cfg.train.grad_bucket_mb * (1 << 20) as f64) as usize;
        let evaluated = match TensorParallel::new(model.vs(), mesh, bucket_bytes, false)? {
            Some(tp) => tp.during(|| model.evaluate(cfg, mesh, None, out))?,
            None => model.evaluate(cfg, mesh, None, out)?,
        };
        let report = evaluated.ok_or_else(|| {
            TrainerError::Config(format!(
                "key {}: the config names no held-out data to evaluate on",
                kind.eval_key()
            ))
        })?;
        let title = format!("{} of {}", report.title(&cfg.name), checkpoint.display());
        let lead = mesh.rank() == 0;
        if let (Some(out), true) = (out, lead) {
            report.write(out, &title)?;
        }
        Ok(Evaluated {
            report,
            title,
            lead,
        })
    })
}
