//! `palisade eval`.

use anyhow::{Context, Result};
use palisade_model::SiglipModel;
use palisade_trainer::{evaluate, setup, ExperimentConfig};
use std::path::PathBuf;

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
    /// Write eval.json and eval.md into this folder (default: print only).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Evaluates the checkpoint and prints the Markdown report.
pub fn run(a: Args) -> Result<()> {
    let cfg = ExperimentConfig::load(&a.config, &a.sets)?;
    setup::set_threads(cfg.threads);
    let device = setup::parse_device(&cfg.device, 0)?;
    let model = SiglipModel::load(&a.checkpoint, device)?;
    let tok = setup::tokenizer(&cfg)?;
    let report = evaluate::evaluate(&cfg, &model, &tok, None)?
        .context("the config has no data.eval shards to evaluate on")?;
    let title = format!("{}: evaluation of {}", cfg.name, a.checkpoint.display());
    if let Some(out) = &a.out {
        report.write(out, &title)?;
    }
    println!("{}", report.to_markdown(&title));
    Ok(())
}
