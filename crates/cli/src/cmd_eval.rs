//! `palisade eval`.

use anyhow::{Context, Result};
use palisade_data::TextTokenizer;
use palisade_evaluator::EvalReport;
use palisade_model::pali::PaliModel;
use palisade_model::SiglipModel;
use palisade_trainer::config::Stage;
use palisade_trainer::{evaluate, setup, ExperimentConfig};
use std::path::PathBuf;
use std::sync::Arc;

/// Arguments of `palisade eval`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Experiment config naming the held-out data and evaluations.
    config: PathBuf,
    /// Model folder or checkpoint folder.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Override a key (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Write eval.json, eval.md and example images into this folder (default: print only).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Evaluates the checkpoint and prints the Markdown report. Runs on every rank when started
/// under mpirun, srun or `palisade launch` (each rank reads its share of the held-out rows);
/// rank 0 prints and writes the report.
pub fn run(a: Args) -> Result<()> {
    let cfg = ExperimentConfig::load(&a.config, &a.sets)?;
    setup::set_threads(cfg.threads);
    let group = palisade_sharding::init(palisade_sharding::backend_from_env()?)?;
    let result = evaluate_here(&a, &cfg, &*group);
    if let Err(e) = &result {
        // A rank that stops alone would leave the others waiting in a collective.
        group.abort(&e.to_string());
    }
    let report = result?;
    if group.rank() != 0 {
        return Ok(());
    }
    let title = format!(
        "{} of {}",
        evaluate::report_title(&cfg),
        a.checkpoint.display()
    );
    if let Some(out) = &a.out {
        report.write(out, &title)?;
    }
    println!("{}", report.to_markdown(&title));
    Ok(())
}

/// This rank's part of the evaluation; every rank returns the whole report.
fn evaluate_here(
    a: &Args,
    cfg: &ExperimentConfig,
    group: &dyn palisade_sharding::ProcessGroup,
) -> Result<EvalReport> {
    let rank = palisade_sharding::discover()?;
    let device = setup::parse_device(&cfg.device, rank.local_rank)?;
    match cfg.stage {
        Stage::Siglip => {
            let model = SiglipModel::load(&a.checkpoint, device)?;
            let tok = setup::tokenizer(cfg)?;
            evaluate::evaluate(cfg, &model, &tok, group, None)?.with_context(|| {
                format!("{}: the config has no data.eval shards", a.config.display())
            })
        }
        Stage::Pali => {
            let model = PaliModel::load(&a.checkpoint, device)?;
            // The checkpoint's tokenizer (with location tokens) is the one the model learnt.
            let tok_file = a.checkpoint.join(crate::cmd_pali::TOKENIZER_FILE);
            let tok = Arc::new(TextTokenizer::load(&tok_file).with_context(|| {
                format!("{}: the PaLI checkpoint's tokenizer", tok_file.display())
            })?);
            evaluate::evaluate_pali(cfg, &model, &tok, group, None, a.out.as_deref())?
                .with_context(|| format!("{}: the config names no eval.tasks", a.config.display()))
        }
    }
}
