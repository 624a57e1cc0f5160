//! `palisade train`.

use anyhow::Result;
use palisade_trainer::{ExperimentConfig, TrainOptions};
use std::path::PathBuf;

/// Arguments of `palisade train`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Experiment config (YAML).
    config: PathBuf,
    /// Override a key: `--set train.lr=3e-4` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Run folder (default: the config's run_dir, else runs/<name>).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Continue from the newest checkpoint in the run folder.
    #[arg(long)]
    resume: bool,
    /// Checkpoint and stop once this many steps are done (for time-limited jobs; resume later).
    #[arg(long, value_name = "STEP")]
    stop_at_step: Option<u64>,
    /// Hide the progress bar.
    #[arg(long)]
    no_progress: bool,
}

/// Loads the config and trains; prints the final report.
pub fn run(a: Args) -> Result<()> {
    let cfg = ExperimentConfig::load(&a.config, &a.sets)?;
    let opts = TrainOptions {
        run_dir: a.run_dir,
        resume: a.resume,
        stop_at_step: a.stop_at_step,
        progress: !a.no_progress,
    };
    let s = palisade_trainer::train(&cfg, &opts)?;
    tracing::info!(
        "stopped at step {} (loss {:.4}); run folder {}",
        s.step,
        s.last_loss,
        s.run_dir.display()
    );
    if let Some(r) = &s.report {
        println!("{}", r.to_markdown(&r.title(&cfg.name)));
    }
    Ok(())
}
