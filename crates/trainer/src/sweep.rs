//! Sweeps: one config, many runs. A grid (`--grid KEY=V1,V2`, every combination) and zipped
//! keys (`--zip KEY=a,b --zip KEY2=c,d`, varied together) give one override set per run; each
//! run's resolved config is written to `OUT/<run-name>/config.yaml`, with `OUT/sweep.tsv`
//! (index, run name, overrides) and `OUT/sweep.sbatch`, a Slurm job array whose task `i` trains
//! row `i` (with --resume, so a preempted task continues). Every combination is loaded and
//! checked before anything is written.

use crate::error::{io_at, Result, TrainerError};
use crate::recipe::Experiment;
use crate::yaml_tree::YamlTree;
use serde_norway::Value;
use std::path::{Path, PathBuf};

/// The varied keys: grid axes and one zipped group (each a key and its values).
#[derive(Debug, Clone, Default)]
pub struct SweepSpec {
    /// Keys whose values are combined every way.
    pub grid: Vec<(String, Vec<String>)>,
    /// Keys whose values are taken together, i-th with i-th (one more grid axis).
    pub zip: Vec<(String, Vec<String>)>,
}

/// One run of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRun {
    /// Its folder name under the sweep's folder, from the varied values.
    pub name: String,
    /// `KEY=VALUE` overrides, in key order.
    pub overrides: Vec<String>,
}

/// Parses `KEY=V1,V2,...` (a `--grid` or `--zip` flag).
pub fn parse_axis(flag: &str, text: &str) -> Result<(String, Vec<String>)> {
    let (key, values) = text.split_once('=').ok_or_else(|| {
        TrainerError::Config(format!("--{flag} {text:?}: expected KEY=V1,V2,..."))
    })?;
    let values: Vec<String> = values
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(String::from)
        .collect();
    if key.is_empty() || values.is_empty() {
        return Err(TrainerError::Config(format!(
            "--{flag} {text:?}: a key and at least one value are needed"
        )));
    }
    Ok((key.to_string(), values))
}

impl SweepSpec {
    /// The spec of a config's `sweep:` block (`{grid: {KEY: [V, ...]}, zip: {KEY: [...]}}`).
    fn from_block(v: &Value, file: &Path) -> Result<SweepSpec> {
        let bad =
            |msg: String| TrainerError::Config(format!("{}: key sweep: {msg}", file.display()));
        let axes = |part: &str| -> Result<Vec<(String, Vec<String>)>> {
            let Some(m) = v.get(part) else {
                return Ok(Vec::new());
            };
            let Value::Mapping(m) = m else {
                return Err(bad(format!("{part} must map keys to lists of values")));
            };
            m.iter()
                .map(|(k, vals)| {
                    let key = k
                        .as_str()
                        .ok_or_else(|| bad(format!("{part}: {k:?} is not a key")))?;
                    let Value::Sequence(vals) = vals else {
                        return Err(bad(format!("{part}.{key}: expected a list of values")));
                    };
                    let vals = vals.iter().map(scalar_text).collect::<Vec<_>>();
                    Ok((key.to_string(), vals))
                })
                .collect()
        };
        if let Value::Mapping(m) = v {
            if let Some(other) = m
                .keys()
                .filter_map(Value::as_str)
                .find(|k| *k != "grid" && *k != "zip")
            {
                return Err(bad(format!("unknown key {other:?} (expected grid, zip)")));
            }
        }
        Ok(SweepSpec {
            grid: axes("grid")?,
            zip: axes("zip")?,
        })
    }

    /// Every combination, in order (the last grid key varies fastest).
    pub fn runs(&self) -> Result<Vec<SweepRun>> {
        if let Some((key, _)) = self
            .grid
            .iter()
            .chain(&self.zip)
            .find(|(_, v)| v.is_empty())
        {
            return Err(TrainerError::Config(format!("sweep key {key}: no values")));
        }
        let mut axes: Vec<Vec<Vec<(String, String)>>> = self
            .grid
            .iter()
            .map(|(k, vs)| vs.iter().map(|v| vec![(k.clone(), v.clone())]).collect())
            .collect();
        if let Some((_, first)) = self.zip.first() {
            if let Some((k, vs)) = self.zip.iter().find(|(_, vs)| vs.len() != first.len()) {
                return Err(TrainerError::Config(format!(
                    "--zip {k}: {} values, but the first zipped key has {}",
                    vs.len(),
                    first.len()
                )));
            }
            axes.push(
                (0..first.len())
                    .map(|i| {
                        self.zip
                            .iter()
                            .map(|(k, vs)| (k.clone(), vs[i].clone()))
                            .collect()
                    })
                    .collect(),
            );
        }
        if axes.is_empty() {
            return Err(TrainerError::Config(
                "the sweep varies nothing: give --grid KEY=V1,V2 (or --zip, or a sweep: block)"
                    .into(),
            ));
        }
        let mut combos: Vec<Vec<(String, String)>> = vec![Vec::new()];
        for axis in &axes {
            combos = combos
                .iter()
                .flat_map(|c| {
                    axis.iter().map(move |choice| {
                        let mut c = c.clone();
                        c.extend(choice.iter().cloned());
                        c
                    })
                })
                .collect();
        }
        Ok(combos
            .into_iter()
            .map(|c| SweepRun {
                name: run_name(&c),
                overrides: c.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            })
            .collect())
    }
}

/// A YAML scalar as the text `--set` would take.
fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => serde_norway::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// `lr=0.001_batch_size=32`: each varied key's last part and its value, file-name safe.
fn run_name(choice: &[(String, String)]) -> String {
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || ".-+_".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    choice
        .iter()
        .map(|(k, v)| format!("{}={}", safe(k.rsplit('.').next().unwrap_or(k)), safe(v)))
        .collect::<Vec<_>>()
        .join("_")
}

/// A sweep ready to write: each run's merged config tree, checked.
#[derive(Debug)]
pub struct Sweep {
    /// The runs, in order.
    pub runs: Vec<(SweepRun, YamlTree)>,
}

/// Loads `config` with the shared `sets`, the flags' axes and its own `sweep:` block, and checks
/// every combination as `palisade train` would.
pub fn plan(config: &Path, sets: &[String], flags: &SweepSpec) -> Result<Sweep> {
    let mut base = YamlTree::load(config)?;
    let block = base.take("sweep");
    base.apply_sets(sets)?;
    let mut spec = match &block {
        Some(b) => SweepSpec::from_block(b, config)?,
        None => SweepSpec::default(),
    };
    spec.grid.extend(flags.grid.iter().cloned());
    spec.zip.extend(flags.zip.iter().cloned());
    let runs = spec.runs()?;
    let mut names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
    names.sort();
    names.dedup();
    if names.len() != runs.len() {
        return Err(TrainerError::Config(
            "two runs of the sweep would get the same folder name (repeated values?)".into(),
        ));
    }
    let mut out = Vec::new();
    for run in runs {
        let mut tree = base.clone();
        tree.apply_sets(&run.overrides)?;
        // The check `palisade train` makes.
        Experiment::from_tree(tree.clone())
            .map_err(|e| TrainerError::Config(format!("sweep run {}: {e}", run.name)))?;
        out.push((run, tree));
    }
    Ok(Sweep { runs: out })
}

/// What `write` produced.
#[derive(Debug)]
pub struct Written {
    /// Each run's folder.
    pub run_dirs: Vec<PathBuf>,
    /// `OUT/sweep.tsv`.
    pub tsv: PathBuf,
    /// `OUT/sweep.sbatch`.
    pub sbatch: PathBuf,
}

impl Sweep {
    /// Writes each run's config, the table and the Slurm job array under `out`.
    pub fn write(&self, out: &Path, palisade: &Path) -> Result<Written> {
        std::fs::create_dir_all(out).map_err(io_at(out))?;
        let mut run_dirs = Vec::new();
        let mut tsv = String::from("index\trun\toverrides\n");
        for (i, (run, tree)) in self.runs.iter().enumerate() {
            let dir = out.join(&run.name);
            std::fs::create_dir_all(&dir).map_err(io_at(&dir))?;
            let text = serde_norway::to_string(&tree.root)
                .map_err(|e| TrainerError::Config(e.to_string()))?;
            palisade_files::write(&dir.join("config.yaml"), text)?;
            tsv.push_str(&format!("{i}\t{}\t{}\n", run.name, run.overrides.join(" ")));
            run_dirs.push(dir);
        }
        let tsv_path = out.join("sweep.tsv");
        palisade_files::write(&tsv_path, tsv)?;
        // Slurm does not create an --output folder: a task whose folder is missing fails
        // before it starts, leaving no trace but slurmd's log.
        let logs = out.join(SLURM_LOGS);
        std::fs::create_dir_all(&logs).map_err(io_at(&logs))?;
        let sbatch = out.join("sweep.sbatch");
        palisade_files::write(&sbatch, job_array(self.runs.len(), out, palisade))?;
        Ok(Written {
            run_dirs,
            tsv: tsv_path,
            sbatch,
        })
    }
}

/// Folder under the sweep's output holding each array task's Slurm log.
pub const SLURM_LOGS: &str = "slurm-logs";

/// The Slurm job array: task `i` trains row `i` of sweep.tsv, as launch/slurm.sbatch trains one
/// config (one task per GPU, preemption and requeue included).
fn job_array(n: usize, out: &Path, palisade: &Path) -> String {
    let out = out.canonicalize().unwrap_or_else(|_| out.to_path_buf());
    format!(
        r#"#!/usr/bin/env bash
# Written by `palisade sweep`: task i of the array trains row i of sweep.tsv into its folder.
#   sbatch {sbatch}
# Adjust the #SBATCH lines to the cluster (as in launch/slurm.sbatch).
#SBATCH --job-name=palisade-sweep
#SBATCH --array=0-{last}
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-task=1
#SBATCH --cpus-per-task=12
#SBATCH --time=24:00:00
#SBATCH --output={out}/{logs}/%A_%a.out
#SBATCH --open-mode=append
#SBATCH --signal=USR1@120
#SBATCH --requeue
set -euo pipefail
SWEEP={out}
PALISADE="${{PALISADE:-{palisade}}}"
TASK="${{SLURM_ARRAY_TASK_ID:?run under sbatch (or set SLURM_ARRAY_TASK_ID)}}"
RUN=$(awk -F'\t' -v i="$TASK" 'NR > 1 && $1 == i {{ print $2 }}' "$SWEEP/sweep.tsv")
[ -n "$RUN" ] || {{ echo "no row $TASK in $SWEEP/sweep.tsv" >&2; exit 1; }}
export OMP_NUM_THREADS="${{SLURM_CPUS_PER_TASK:-1}}"
export PALISADE_BACKEND="${{PALISADE_BACKEND:-mpi}}"
DEVICE="${{PALISADE_DEVICE:-cuda:0}}"
rc=0
srun --mpi=pmix --kill-on-bad-exit=1 "$PALISADE" train "$SWEEP/$RUN/config.yaml" --run-dir "$SWEEP/$RUN" \
  --resume --set "device=$DEVICE" --set "threads=$OMP_NUM_THREADS" --no-progress || rc=$?
if [ "$rc" = 75 ]; then
  # Preempted with a checkpoint written: requeue this task to continue from it.
  scontrol requeue "${{SLURM_ARRAY_JOB_ID}}_${{TASK}}"
  exit 0
fi
exit "$rc"
"#,
        sbatch = out.join("sweep.sbatch").display(),
        last = n.saturating_sub(1),
        out = out.display(),
        logs = SLURM_LOGS,
        palisade = palisade.display(),
    )
}

/// Trains every run of `written` here, `parallel` at a time, the machine's cores divided
/// between them; returns the runs that failed with their exit codes.
pub fn run_local(
    written: &Written,
    palisade: &Path,
    parallel: usize,
) -> Result<Vec<(PathBuf, i32)>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let parallel = parallel.max(1);
    let threads = (cores / parallel).max(1);
    tracing::info!(
        "{} runs, {parallel} at a time, {threads} threads each",
        written.run_dirs.len()
    );
    let mut failed = Vec::new();
    for chunk in written.run_dirs.chunks(parallel) {
        let children: Vec<_> = chunk
            .iter()
            .map(|dir| {
                let log = std::fs::File::create(dir.join("train.log")).map_err(io_at(dir))?;
                let child = std::process::Command::new(palisade)
                    .arg("train")
                    .arg(dir.join("config.yaml"))
                    .arg("--run-dir")
                    .arg(dir)
                    .args(["--resume", "--no-progress", "--set"])
                    .arg(format!("threads={threads}"))
                    .args(["--set".to_string(), format!("data.threads={threads}")])
                    .stdout(log.try_clone().map_err(io_at(dir))?)
                    .stderr(log)
                    .spawn()
                    .map_err(io_at(palisade))?;
                Ok((dir.clone(), child))
            })
            .collect::<Result<_>>()?;
        for (dir, mut child) in children {
            let status = child.wait().map_err(io_at(&dir))?;
            if !status.success() {
                failed.push((dir, status.code().unwrap_or(1)));
            }
        }
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axis(k: &str, vs: &[&str]) -> (String, Vec<String>) {
        (k.into(), vs.iter().map(|v| v.to_string()).collect())
    }

    #[test]
    fn grids_multiply_and_zips_go_together() {
        let spec = SweepSpec {
            grid: vec![axis("train.lr", &["1e-3", "2e-3"])],
            zip: vec![
                axis("train.batch_size", &["16", "32"]),
                axis("train.steps", &["10", "5"]),
            ],
        };
        let runs = spec.runs().unwrap();
        assert_eq!(runs.len(), 4);
        assert_eq!(runs[0].name, "lr=1e-3_batch_size=16_steps=10");
        assert_eq!(
            runs[3].overrides,
            vec!["train.lr=2e-3", "train.batch_size=32", "train.steps=5"]
        );
        let mut uneven = spec.clone();
        uneven.zip[1].1.pop();
        assert!(uneven
            .runs()
            .unwrap_err()
            .to_string()
            .contains("--zip train.steps"));
        assert!(SweepSpec::default()
            .runs()
            .unwrap_err()
            .to_string()
            .contains("varies nothing"));
        assert!(parse_axis("grid", "train.lr=").is_err());
        assert_eq!(
            parse_axis("grid", "a=1, 2").unwrap(),
            axis("a", &["1", "2"])
        );
    }
}
