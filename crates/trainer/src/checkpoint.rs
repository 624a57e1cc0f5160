//! Checkpoints: one folder per step (`model.safetensors`, `config.json`, `optimizer.safetensors`,
//! `state.json`, `experiment.yaml`), written whole (palisade-files) and kept for the last K.

use crate::error::{io_at, Result, TrainerError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Optimiser moments inside a checkpoint folder.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// Step, data position and config hash inside a checkpoint folder.
pub const STATE_FILE: &str = "state.json";
/// The resolved experiment config inside a checkpoint folder.
pub const EXPERIMENT_FILE: &str = "experiment.yaml";

/// Everything besides tensors that a resumed run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimiser updates applied.
    pub step: u64,
    /// Examples consumed (global).
    pub examples_seen: u64,
    /// The data reader's position on each rank, in rank order (each as its source saves it).
    pub data_cursors: Vec<serde_json::Value>,
    /// The experiment seed; per-step RNGs derive from (seed, step), so no generator state is needed.
    pub seed: u64,
    /// Hash of the resolved config that wrote this checkpoint.
    pub config_hash: String,
    /// Ranks that wrote it.
    pub world_size: usize,
}

/// Folder name of the checkpoint at `step`.
pub fn dir_name(step: u64) -> String {
    format!("step-{step:08}")
}

/// Checkpoint folders in `root`, sorted by step.
pub fn list(root: &Path) -> Result<Vec<(u64, PathBuf)>> {
    if !root.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root).map_err(io_at(root))? {
        let entry = entry.map_err(io_at(root))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(step) = name
            .strip_prefix("step-")
            .and_then(|s| s.parse::<u64>().ok())
        {
            if entry.path().join(STATE_FILE).exists() {
                out.push((step, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The newest complete checkpoint in `root`.
pub fn latest(root: &Path) -> Result<Option<(u64, PathBuf)>> {
    Ok(list(root)?.pop())
}

/// Writes a checkpoint: `fill` writes the files into a temporary folder, which is then renamed
/// to `step-N`; older folders beyond `keep_last` are removed afterwards.
pub fn write(
    root: &Path,
    state: &TrainState,
    keep_last: usize,
    fill: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    std::fs::create_dir_all(root).map_err(io_at(root))?;
    let final_dir = root.join(dir_name(state.step));
    // Re-writing the same step (e.g. after a resume) swaps the new folder in.
    palisade_files::write_dir(&final_dir, |tmp| {
        fill(tmp)?;
        let json = serde_json::to_string_pretty(state).map_err(|e| TrainerError::Checkpoint {
            path: tmp.to_path_buf(),
            msg: e.to_string(),
        })?;
        std::fs::write(tmp.join(STATE_FILE), json).map_err(io_at(tmp.join(STATE_FILE)))
    })?;
    let all = list(root)?;
    if all.len() > keep_last {
        for (_, dir) in &all[..all.len() - keep_last] {
            std::fs::remove_dir_all(dir).map_err(io_at(dir))?;
        }
    }
    Ok(final_dir)
}

/// Reads `state.json` of a checkpoint folder.
pub fn read_state(dir: &Path) -> Result<TrainState> {
    let p = dir.join(STATE_FILE);
    let text = std::fs::read_to_string(&p).map_err(io_at(&p))?;
    serde_json::from_str(&text).map_err(|e| TrainerError::Checkpoint {
        path: p,
        msg: format!("state.json is malformed: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(step: u64) -> TrainState {
        TrainState {
            step,
            examples_seen: step * 4,
            data_cursors: vec![serde_json::json!({"epoch": 0, "unit": 0, "row": 0})],
            seed: 1,
            config_hash: "h".into(),
            world_size: 1,
        }
    }

    #[test]
    fn writes_atomically_and_keeps_last_k() {
        let dir = tempfile::tempdir().unwrap();
        for s in [10, 20, 30] {
            write(dir.path(), &state(s), 2, |d| {
                std::fs::write(d.join("x"), "1").map_err(io_at(d))
            })
            .unwrap();
        }
        let steps: Vec<u64> = list(dir.path())
            .unwrap()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(steps, vec![20, 30]);
        assert_eq!(
            read_state(&latest(dir.path()).unwrap().unwrap().1).unwrap(),
            state(30)
        );
        // A failed fill leaves the existing checkpoints intact and no final folder for the step.
        let err = write(dir.path(), &state(40), 2, |_| {
            Err(TrainerError::Config("boom".into()))
        });
        assert!(err.is_err());
        assert_eq!(latest(dir.path()).unwrap().unwrap().0, 30);
    }
}
