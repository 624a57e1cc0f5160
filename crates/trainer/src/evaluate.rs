//! Evaluation of a SigLIP model on the experiment's held-out shards, shared by the train loop
//! and `palisade eval`.

use crate::config::ExperimentConfig;
use crate::error::Result;
use crate::setup::{self, Split};
use palisade_data::TextTokenizer;
use palisade_evaluator::{siglip_eval, EvalReport};
use palisade_model::SiglipModel;
use std::path::Path;
use std::sync::Arc;

/// Report folder inside a run folder.
pub const REPORT_DIR: &str = "report";

/// Embeds the held-out split and scores it; `None` when no `data.eval` is configured.
pub fn evaluate(
    cfg: &ExperimentConfig,
    model: &SiglipModel,
    tok: &Arc<TextTokenizer>,
    step: Option<u64>,
) -> Result<Option<EvalReport>> {
    if cfg.data.eval.is_none() {
        return Ok(None);
    }
    let loader = setup::loader(
        cfg,
        Split::Eval,
        tok,
        model.config(),
        cfg.eval.batch_size,
        0,
        1,
    )?;
    Ok(Some(siglip_eval::evaluate(
        model,
        loader.epoch_batches(),
        tok,
        &cfg.eval,
        step,
    )?))
}

/// Writes `report/eval.json` and `report/eval.md` in `run_dir`.
pub fn write_report(cfg: &ExperimentConfig, report: &EvalReport, run_dir: &Path) -> Result<()> {
    let title = format!("{}: SigLIP evaluation", cfg.name);
    report.write(&run_dir.join(REPORT_DIR), &title)?;
    Ok(())
}
