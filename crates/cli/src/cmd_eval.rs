//! `palisade eval`.

use anyhow::Result;
use palisade_trainer::ExperimentConfig;
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
    /// Write eval.json, eval.md and example images into this folder (default: print only).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Evaluates the checkpoint and prints the Markdown report. Runs on every rank when started
/// under mpirun, srun or `palisade launch` (each rank reads its share of the held-out rows);
/// rank 0 prints and writes the report.
pub fn run(a: Args) -> Result<()> {
    let cfg = ExperimentConfig::load(&a.config, &a.sets)?;
    let e = palisade_trainer::evaluate(&cfg, &a.checkpoint, a.out.as_deref())?;
    if e.lead {
        println!("{}", e.report.to_markdown(&e.title));
    }
    Ok(())
}
