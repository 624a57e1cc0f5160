//! `palisade eval`.

use anyhow::{Context, Result};
use palisade_data::TextTokenizer;
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

/// Evaluates the checkpoint and prints the Markdown report. PaLI benchmarks run on every rank
/// when started under mpirun, srun or `palisade launch`; rank 0 prints and writes the report.
pub fn run(a: Args) -> Result<()> {
    let cfg = ExperimentConfig::load(&a.config, &a.sets)?;
    setup::set_threads(cfg.threads);
    let title = format!(
        "{} of {}",
        evaluate::report_title(&cfg),
        a.checkpoint.display()
    );
    let report = match cfg.stage {
        Stage::Siglip => {
            let device = setup::parse_device(&cfg.device, 0)?;
            let model = SiglipModel::load(&a.checkpoint, device)?;
            let tok = setup::tokenizer(&cfg)?;
            evaluate::evaluate(&cfg, &model, &tok, None)?
                .context("the config has no data.eval shards to evaluate on")?
        }
        Stage::Pali => {
            let group = palisade_sharding::init(palisade_sharding::backend_from_env()?)?;
            let result = pali(&a, &cfg, &*group);
            if let Err(e) = &result {
                // A rank that stops alone would leave the others waiting in a collective.
                group.abort(&e.to_string());
            }
            match result? {
                Some(r) => r,
                None => return Ok(()),
            }
        }
    };
    if let Some(out) = &a.out {
        report.write(out, &title)?;
    }
    println!("{}", report.to_markdown(&title));
    Ok(())
}

/// Evaluates a PaLI checkpoint on this rank; the report on rank 0, `None` on the others.
fn pali(
    a: &Args,
    cfg: &ExperimentConfig,
    group: &dyn palisade_sharding::ProcessGroup,
) -> Result<Option<palisade_evaluator::EvalReport>> {
    anyhow::ensure!(
        !cfg.eval.tasks.is_empty(),
        "{}: the config names no eval.tasks to run",
        a.config.display()
    );
    let rank = palisade_sharding::discover()?;
    let device = setup::parse_device(&cfg.device, rank.local_rank)?;
    let model = PaliModel::load(&a.checkpoint, device)?;
    // The checkpoint's own tokenizer (with location tokens) is the one the model was trained with.
    let tok_file = a.checkpoint.join(crate::cmd_pali::TOKENIZER_FILE);
    let tok = Arc::new(
        TextTokenizer::load(&tok_file)
            .with_context(|| format!("{}: the PaLI checkpoint's tokenizer", tok_file.display()))?,
    );
    let report = evaluate::evaluate_pali(cfg, &model, &tok, group, None, a.out.as_deref())?
        .context("no tasks were evaluated")?;
    Ok((group.rank() == 0).then_some(report))
}
