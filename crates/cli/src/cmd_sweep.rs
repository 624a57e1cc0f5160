//! `palisade sweep`: one config, a run per combination of the varied keys.

use anyhow::{bail, Result};
use palisade_trainer::sweep::{parse_axis, plan, run_local, SweepSpec};
use std::path::PathBuf;

/// Arguments of `palisade sweep`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Writes OUT/<run-name>/config.yaml per combination (run names from the varied values),
OUT/sweep.tsv (index, run name, overrides) and OUT/sweep.sbatch (a Slurm job array: task i
trains row i with --resume). A `sweep: {grid: {KEY: [V, ...]}, zip: {...}}` block in the config
adds to the flags. Compare the runs afterwards: palisade report OUT/*/ --out OUT/report")]
pub struct Args {
    /// Experiment config (YAML; a recipe with `stages:` too).
    config: PathBuf,
    /// A key and its values, combined with every other grid key: `--grid train.lr=1e-3,3e-3`.
    #[arg(long, value_name = "KEY=V1,V2,...")]
    grid: Vec<String>,
    /// Keys varied together, i-th value with i-th: `--zip train.lr=1e-3,3e-3 --zip train.steps=200,100`.
    #[arg(long, value_name = "KEY=V1,V2,...")]
    zip: Vec<String>,
    /// Override a key in every run (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// The sweep's folder.
    #[arg(long)]
    out: PathBuf,
    /// `local`: also train every run here, one after another (or --parallel at a time).
    #[arg(long, value_name = "WHERE")]
    run: Option<String>,
    /// With --run local: runs at a time, the machine's cores divided between them.
    #[arg(long, default_value_t = 1)]
    parallel: usize,
}

/// Plans, writes and (with --run local) trains the sweep.
pub fn run(a: Args) -> Result<()> {
    let spec = SweepSpec {
        grid: a
            .grid
            .iter()
            .map(|g| parse_axis("grid", g))
            .collect::<Result<_, _>>()?,
        zip: a
            .zip
            .iter()
            .map(|z| parse_axis("zip", z))
            .collect::<Result<_, _>>()?,
    };
    if a.run.as_deref().is_some_and(|r| r != "local") {
        bail!(
            "--run {:?}: only `local` runs here (submit OUT/sweep.sbatch to Slurm)",
            a.run.unwrap_or_default()
        );
    }
    // Every combination is checked before anything is written.
    let sweep = plan(&a.config, &a.sets, &spec)?;
    let palisade = std::env::current_exe()?;
    let written = sweep.write(&a.out, &palisade)?;
    for (run, _) in &sweep.runs {
        println!("{}\t{}", run.name, run.overrides.join(" "));
    }
    println!("{}\n{}", written.tsv.display(), written.sbatch.display());
    if a.run.is_some() {
        let failed = run_local(&written, &palisade, a.parallel)?;
        if !failed.is_empty() {
            let list: Vec<String> = failed
                .iter()
                .map(|(d, c)| format!("{} (exit {c}; see its train.log)", d.display()))
                .collect();
            bail!(
                "{} of {} runs failed: {}",
                failed.len(),
                written.run_dirs.len(),
                list.join(", ")
            );
        }
    }
    Ok(())
}
