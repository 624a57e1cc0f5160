//! `palisade report`: rebuild a run's reports from its files, or compare several runs.

use anyhow::{bail, Result};
use palisade_evaluator::html;
use std::path::PathBuf;

/// Arguments of `palisade report`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
One run: rebuilds RUN_DIR/report/eval.json, eval.md and index.html (one self-contained page with
training curves, evaluation metrics against step and qualitative examples) from the run's
config.yaml, metrics.jsonl and report/eval.json.
Several runs (a sweep): --out DIR gets index.html, comparison.md and comparison.json, one row per
run and the config keys whose values differ.")]
pub struct Args {
    /// Run folders (as written by `palisade train`).
    #[arg(required = true, value_name = "RUN_DIR")]
    runs: Vec<PathBuf>,
    /// Compare the runs and write the comparison into this folder (needed for several runs).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Writes the report(s) and prints each file written.
pub fn run(a: Args) -> Result<()> {
    let written = match (&a.out, a.runs.as_slice()) {
        (None, [one]) => html::write_run_report(one)?,
        (None, _) => bail!(
            "comparing {} runs needs --out DIR for the comparison (one run's report goes into RUN_DIR/report/)",
            a.runs.len()
        ),
        (Some(out), runs) => html::write_comparison(runs, out)?,
    };
    for f in written {
        println!("{}", f.display());
    }
    Ok(())
}
