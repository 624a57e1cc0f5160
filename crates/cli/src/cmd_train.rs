//! `palisade train`.

use anyhow::Result;
use palisade_trainer::{preempt::PREEMPTED_EXIT, End, ExperimentConfig, TrainOptions};
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
    /// With --resume: continue even though keys that change the training trajectory (lr,
    /// batch size, data, seed, model) differ from the checkpoint's config.
    #[arg(long)]
    allow_config_change: bool,
}

/// Loads the config and trains; prints the final report.
pub fn run(a: Args) -> Result<()> {
    let cfg = ExperimentConfig::load(&a.config, &a.sets)?;
    let opts = TrainOptions {
        run_dir: a.run_dir,
        resume: a.resume,
        stop_at_step: a.stop_at_step,
        progress: !a.no_progress,
        allow_config_change: a.allow_config_change,
    };
    let s = palisade_trainer::train(&cfg, &opts)?;
    match s.end {
        End::AlreadyFinished => {
            println!(
                "{} already finished at step {} with its report; nothing to do",
                s.run_dir.display(),
                s.step
            );
            return Ok(());
        }
        // A scheduler's job script requeues on this code and continues with --resume.
        End::Preempted(_) => std::process::exit(PREEMPTED_EXIT),
        End::Done => {}
    }
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
