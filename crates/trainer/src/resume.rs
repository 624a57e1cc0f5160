//! Where a run starts, said out loud: fresh, from the newest valid checkpoint (naming each newer
//! one passed over and why), or not at all because it already finished. A resumed config is
//! compared key by key with the one that wrote the checkpoint; keys that change the trajectory
//! are refused unless the user allows it.

use crate::checkpoint::{self, TrainState, EXPERIMENT_FILE};
use crate::config::ExperimentConfig;
use crate::error::{Result, TrainerError};
use palisade_evaluator::RunFolder;
use serde_norway::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How this invocation begins.
#[derive(Debug)]
pub enum Start {
    /// From step 0.
    Fresh,
    /// From the checkpoint in `dir`.
    From { dir: PathBuf, state: TrainState },
    /// The run reached `train.steps` and has its report: nothing to do.
    Finished { step: u64 },
}

/// Keys that may change between a checkpoint and its resumption: where and how the run is
/// observed or laid out over memory and ranks, not what it computes. `train.steps` may grow (its cosine is recomputed; listed).
const MAY_CHANGE: &[&str] = &[
    "name",
    "run_dir",
    "threads",
    "device",
    "train.steps",
    "train.log_every",
    "train.checkpoint_every",
    "train.keep_last",
    "train.prune_before_write",
    "train.preempt_signals",
    "train.eval_every",
    "train.accum_steps",
    "train.remat",
    "train.grad_bucket_mb",
    "parallel",
    "eval",
    "data.threads",
    "data.prefetch",
];

/// Decides how the run in `run` starts; `speak`: this rank reports what it decided.
pub fn decide(
    run: &RunFolder,
    cfg: &ExperimentConfig,
    resume: bool,
    allow_config_change: bool,
    speak: bool,
) -> Result<Start> {
    let root = run.checkpoints();
    if !resume {
        if !checkpoint::list(&root)?.is_empty() {
            return Err(TrainerError::Config(format!(
                "run folder {} already holds checkpoints: pass --resume to continue it, or choose another --run-dir",
                run.root.display()
            )));
        }
        return Ok(Start::Fresh);
    }
    let checkpoint::Newest { best, skipped } = checkpoint::newest_valid(&root)?;
    if speak {
        for (dir, why) in &skipped {
            tracing::warn!(
                "--resume: skipping {}: {why}; an older checkpoint is used and this one will be replaced",
                dir.display()
            );
        }
    }
    let Some((step, dir)) = best else {
        if !skipped.is_empty() {
            // Starting fresh would overwrite them: the user decides.
            return Err(TrainerError::Checkpoint {
                path: root,
                msg: format!(
                    "--resume: no checkpoint here is valid ({}); move them away to start fresh",
                    skipped
                        .iter()
                        .map(|(d, why)| format!("{}: {why}", d.display()))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            });
        }
        if speak {
            tracing::warn!(
                "--resume: {} holds no checkpoint; starting fresh",
                root.display()
            );
        }
        return Ok(Start::Fresh);
    };
    let state = checkpoint::read_state(&dir)?;
    let steps = cfg.train.steps;
    if step > steps {
        return Err(TrainerError::Config(format!(
            "key train.steps: {steps} is below step {step} of the checkpoint {} it would resume; \
             raise train.steps, or train into another --run-dir",
            dir.display()
        )));
    }
    check_config_change(&dir, cfg, allow_config_change, speak)?;
    if step == steps && run.eval_json().exists() {
        return Ok(Start::Finished { step });
    }
    Ok(Start::From { dir, state })
}

/// Lists the keys that differ from the checkpoint's config; refuses trajectory keys unless
/// `allow` is set.
fn check_config_change(dir: &Path, cfg: &ExperimentConfig, allow: bool, speak: bool) -> Result<()> {
    let path = dir.join(EXPERIMENT_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(()); // written before checkpoints held their config
    };
    let parse = |t: &str| serde_norway::from_str::<Value>(t).unwrap_or(Value::Null);
    let (before, now) = (flatten(&parse(&text)), flatten(&parse(&cfg.to_yaml())));
    let mut keys: Vec<&String> = before.keys().chain(now.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut refused = Vec::new();
    for key in keys {
        let (b, n) = (before.get(key), now.get(key));
        if b == n {
            continue;
        }
        let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "(unset)".into());
        let line = format!("{key}: {} → {}", show(b), show(n));
        let free = MAY_CHANGE
            .iter()
            .any(|k| key == k || key.starts_with(&format!("{k}.")));
        if speak {
            tracing::warn!("--resume: config changed since the checkpoint: {line}");
        }
        if !free {
            refused.push(line);
        }
    }
    if refused.is_empty() || allow {
        return Ok(());
    }
    Err(TrainerError::Config(format!(
        "--resume: these keys differ from the config that wrote {} and change the training \
         trajectory: {}; pass --allow-config-change to resume anyway",
        dir.display(),
        refused.join("; ")
    )))
}

/// `a.b.c` → value (as YAML text) for every leaf of a tree.
fn flatten(v: &Value) -> BTreeMap<String, String> {
    fn walk(v: &Value, prefix: &str, out: &mut BTreeMap<String, String>) {
        match v {
            Value::Mapping(m) if !m.is_empty() => {
                for (k, v) in m {
                    let k = k
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("{k:?}"));
                    let key = if prefix.is_empty() {
                        k
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(v, &key, out);
                }
            }
            _ => {
                let text = serde_norway::to_string(v).unwrap_or_default();
                out.insert(prefix.to_string(), text.trim().to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(v, "", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_leaves_to_key_paths() {
        let v: Value = serde_norway::from_str("a: {b: 1, c: [1, 2]}\nd: x\n").unwrap();
        let f = flatten(&v);
        assert_eq!(f["a.b"], "1");
        assert_eq!(f["d"], "x");
        assert!(f["a.c"].contains('1') && f["a.c"].contains('2'));
        assert_eq!(f.len(), 3);
    }
}
