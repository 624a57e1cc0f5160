//! `palisade train`.

use anyhow::{bail, Result};
use palisade_trainer::recipe::{train_recipe, Experiment};
use palisade_trainer::{preempt::PREEMPTED_EXIT, End, TrainOptions, TrainSummary};
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
    /// A recipe's stage to run alone (from its predecessor's final checkpoint).
    #[arg(long, value_name = "NAME")]
    stage: Option<String>,
    /// With --resume: continue even though keys that change the training trajectory (lr,
    /// batch size, data, seed, model) differ from the checkpoint's config.
    #[arg(long)]
    allow_config_change: bool,
}

/// Loads the config (one stage or a recipe) and trains; prints each stage's report.
pub fn run(a: Args) -> Result<()> {
    let experiment = Experiment::load(&a.config, &a.sets)?;
    let opts = TrainOptions {
        run_dir: a.run_dir,
        resume: a.resume,
        stop_at_step: a.stop_at_step,
        progress: !a.no_progress,
        allow_config_change: a.allow_config_change,
    };
    let (stages, end) = match &experiment {
        Experiment::Single(cfg) => {
            if let Some(name) = &a.stage {
                bail!(
                    "--stage {name}: {} has no `stages:` list",
                    a.config.display()
                );
            }
            let s = palisade_trainer::train(cfg, &opts)?;
            let end = s.end;
            (vec![(cfg.name.clone(), s)], end)
        }
        Experiment::Recipe(r) => {
            let s = train_recipe(r, &opts, a.stage.as_deref())?;
            if s.complete {
                println!(
                    "every stage finished; comparison in {}",
                    s.run_dir.join("report/index.html").display()
                );
            }
            (s.stages, s.end)
        }
    };
    for (name, s) in &stages {
        report(name, s);
    }
    if let End::Preempted(_) = end {
        // A scheduler's job script requeues on this code and continues with --resume.
        std::process::exit(PREEMPTED_EXIT);
    }
    Ok(())
}

/// Prints what one stage's run did.
fn report(name: &str, s: &TrainSummary) {
    if s.end == End::AlreadyFinished {
        println!(
            "{} already finished at step {} with its report; nothing to do",
            s.run_dir.display(),
            s.step
        );
        return;
    }
    tracing::info!(
        "stopped at step {} (loss {:.4}); run folder {}",
        s.step,
        s.last_loss,
        s.run_dir.display()
    );
    if let Some(r) = &s.report {
        println!("{}", r.to_markdown(&r.title(name)));
    }
}
