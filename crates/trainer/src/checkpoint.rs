//! Checkpoints: one folder per step (`model.safetensors`, `config.json`, `optimizer.safetensors`,
//! `state.json`, `experiment.yaml`), written whole (palisade-files) and kept for the last K.

use crate::error::{io_at, Result, TrainerError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Optimiser moments inside a checkpoint folder.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// The index of optimizer state written in shards, one per rank (`parallel.shard: optimizer`).
pub const OPTIMIZER_INDEX: &str = "optimizer.safetensors.index.json";

/// The optimizer state of the checkpoint folder `dir`: one file, or the per-rank shards its
/// index lists (a missing shard is named).
pub fn open_optimizer(dir: &Path) -> Result<palisade_model::weights::Weights> {
    Ok(palisade_model::weights::Weights::open_in(
        dir,
        OPTIMIZER_FILE,
        OPTIMIZER_INDEX,
    )?)
}
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

/// Every `step-N` folder in `root`, complete or not, sorted by step.
fn folders(root: &Path) -> Result<Vec<(u64, PathBuf)>> {
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
            out.push((step, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Checkpoint folders in `root` that hold a `state.json`, sorted by step.
pub fn list(root: &Path) -> Result<Vec<(u64, PathBuf)>> {
    Ok(folders(root)?
        .into_iter()
        .filter(|(_, d)| d.join(STATE_FILE).exists())
        .collect())
}

/// The newest checkpoint in `root` that holds a `state.json`.
pub fn latest(root: &Path) -> Result<Option<(u64, PathBuf)>> {
    Ok(list(root)?.pop())
}

/// What is wrong with the checkpoint folder `dir` of `step`, if anything: a missing or
/// malformed `state.json`, a step that disagrees with the name, a truncated or missing tensor
/// file.
pub fn problem(step: u64, dir: &Path) -> Option<String> {
    let state = match read_state(dir) {
        Ok(s) => s,
        Err(TrainerError::Io { .. }) => return Some(format!("it has no {STATE_FILE}")),
        Err(e) => return Some(e.to_string()),
    };
    if state.step != step {
        return Some(format!("its {STATE_FILE} says step {}", state.step));
    }
    let weights = dir.join(palisade_model::folder::WEIGHTS_FILE);
    if let Err(e) = palisade_model::weights::safetensors::SafetensorsFile::open(&weights) {
        return Some(e.to_string());
    }
    open_optimizer(dir).err().map(|e| e.to_string())
}

/// The newest valid checkpoint of a run, and the newer folders passed over.
#[derive(Debug, Default)]
pub struct Newest {
    /// Its step and folder, if any is valid.
    pub best: Option<(u64, PathBuf)>,
    /// Each newer folder passed over, newest first, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// The newest valid checkpoint in `root`, and each newer folder passed over with the reason.
pub fn newest_valid(root: &Path) -> Result<Newest> {
    let mut out = Newest::default();
    for (step, dir) in folders(root)?.into_iter().rev() {
        match problem(step, &dir) {
            None => {
                out.best = Some((step, dir));
                break;
            }
            Some(why) => out.skipped.push((dir, why)),
        }
    }
    Ok(out)
}

/// Writes the checkpoint folder `dir` to `out` (which must not exist) with its optimizer state
/// in one `optimizer.safetensors`: the model folder's files, state and config as they are, and
/// the per-rank shards merged. Returns the number of optimizer entries.
pub fn consolidate(dir: &Path, out: &Path) -> Result<usize> {
    if let Some(why) = read_state(dir).err() {
        return Err(TrainerError::Checkpoint {
            path: dir.to_path_buf(),
            msg: format!("is not a checkpoint folder: {why}"),
        });
    }
    if out.exists() {
        return Err(TrainerError::Config(format!(
            "--out {}: exists; consolidate writes a new folder",
            out.display()
        )));
    }
    let opt = open_optimizer(dir)?;
    let is_shard = |name: &str| {
        name == OPTIMIZER_INDEX
            || (name.starts_with("optimizer-") && name.ends_with(".safetensors"))
    };
    palisade_files::write_dir(out, |tmp| -> Result<usize> {
        for entry in std::fs::read_dir(dir).map_err(io_at(dir))? {
            let entry = entry.map_err(io_at(dir))?;
            let name = entry.file_name().to_string_lossy().to_string();
            if is_shard(&name) || !entry.path().is_file() {
                continue;
            }
            std::fs::copy(entry.path(), tmp.join(&name)).map_err(io_at(entry.path()))?;
        }
        let names: Vec<String> = opt.names().map(str::to_string).collect();
        let tensors = names
            .iter()
            .map(|n| Ok((n.clone(), opt.read(n)?)))
            .collect::<Result<Vec<_>>>()?;
        palisade_model::weights::write_atomic(&tensors, &tmp.join(OPTIMIZER_FILE))?;
        Ok(tensors.len())
    })
}

/// How checkpoints are kept.
#[derive(Debug, Clone, Copy)]
pub struct Keep {
    /// Checkpoints kept.
    pub last: usize,
    /// Prune down to `last - 1` before writing (the disk then holds `last`, not `last + 1`).
    pub prune_first: bool,
    /// Bytes the new checkpoint is expected to take (refused up front when the disk lacks them).
    pub bytes: u64,
}

/// Writes a checkpoint: `fill` writes the files into a temporary folder, which is then renamed
/// to `step-N`; older folders beyond `keep.last` are removed afterwards (or before, with
/// `keep.prune_first`). The disk's free space is checked first.
pub fn write(
    root: &Path,
    state: &TrainState,
    keep: Keep,
    fill: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    std::fs::create_dir_all(root).map_err(io_at(root))?;
    let final_dir = root.join(dir_name(state.step));
    if keep.prune_first {
        prune(root, keep.last.saturating_sub(1).max(1), state.step)?;
    }
    palisade_files::ensure_free(root, keep.bytes, &format!("checkpoint step {}", state.step))?;
    // Re-writing the same step (e.g. after a resume) swaps the new folder in.
    palisade_files::write_dir(&final_dir, |tmp| {
        fill(tmp)?;
        let json = serde_json::to_string_pretty(state).map_err(|e| TrainerError::Checkpoint {
            path: tmp.to_path_buf(),
            msg: e.to_string(),
        })?;
        std::fs::write(tmp.join(STATE_FILE), json).map_err(io_at(tmp.join(STATE_FILE)))
    })?;
    prune(root, keep.last, state.step)?;
    Ok(final_dir)
}

/// Removes the oldest complete checkpoints until `keep` remain (never the one of `current`).
fn prune(root: &Path, keep: usize, current: u64) -> Result<()> {
    let (mine, all): (Vec<_>, Vec<_>) = list(root)?.into_iter().partition(|(s, _)| *s == current);
    let others_kept = keep.saturating_sub(mine.len());
    if all.len() > others_kept {
        for (_, dir) in &all[..all.len() - others_kept] {
            std::fs::remove_dir_all(dir).map_err(io_at(dir))?;
        }
    }
    Ok(())
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
        let keep = Keep {
            last: 2,
            prune_first: false,
            bytes: 1,
        };
        for s in [10, 20, 30] {
            write(dir.path(), &state(s), keep, |d| {
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
        let err = write(dir.path(), &state(40), keep, |_| {
            Err(TrainerError::Config("boom".into()))
        });
        assert!(err.is_err());
        assert_eq!(latest(dir.path()).unwrap().unwrap().0, 30);
        // Pruning first keeps the disk at `last` checkpoints; a disk without room refuses.
        let first = Keep {
            prune_first: true,
            ..keep
        };
        write(dir.path(), &state(40), first, |_| Ok(())).unwrap();
        let steps: Vec<u64> = list(dir.path()).unwrap().iter().map(|(s, _)| *s).collect();
        assert_eq!(steps, vec![30, 40]);
        let full = Keep {
            bytes: u64::MAX,
            ..keep
        };
        let err = write(dir.path(), &state(50), full, |_| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("checkpoint step 50 needs"), "{err}");
        assert_eq!(latest(dir.path()).unwrap().unwrap().0, 40);
    }

    #[test]
    fn the_newest_valid_checkpoint_is_chosen_and_the_others_named() {
        let dir = tempfile::tempdir().unwrap();
        let keep = Keep {
            last: 5,
            prune_first: false,
            bytes: 1,
        };
        let tensors = vec![(
            "w".to_string(),
            tch::Tensor::ones([4], (tch::Kind::Float, tch::Device::Cpu)),
        )];
        for s in [2, 4, 6] {
            write(dir.path(), &state(s), keep, |d| {
                weights_file(&tensors, d, palisade_model::folder::WEIGHTS_FILE)?;
                weights_file(&tensors, d, OPTIMIZER_FILE)
            })
            .unwrap();
        }
        let four = dir.path().join(dir_name(4));
        let six = dir.path().join(dir_name(6));
        std::fs::remove_file(six.join(STATE_FILE)).unwrap();
        let Newest { best, skipped } = newest_valid(dir.path()).unwrap();
        assert_eq!(best.unwrap().0, 4);
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].1.contains("no state.json"), "{:?}", skipped);
        let w = four.join(palisade_model::folder::WEIGHTS_FILE);
        let bytes = std::fs::read(&w).unwrap();
        std::fs::write(&w, &bytes[..bytes.len() - 4]).unwrap();
        let Newest { best, skipped } = newest_valid(dir.path()).unwrap();
        assert_eq!(best.unwrap().0, 2);
        assert!(skipped[1].1.contains("model.safetensors"), "{:?}", skipped);
    }

    fn weights_file(t: &[(String, tch::Tensor)], d: &Path, name: &str) -> Result<()> {
        Ok(palisade_model::weights::write_atomic(t, &d.join(name))?)
    }
}
