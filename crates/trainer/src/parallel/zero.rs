//! `parallel.shard: optimizer` — ZeRO stage 1, partitioned by parameter as PyTorch's
//! `ZeroRedundancyOptimizer` does: the trainable parameters are dealt out whole to the `dp`
//! ranks (largest first, each to the least-loaded rank), every rank keeps the optimizer state
//! of, and updates, only its own, then each rank broadcasts its updated parameters to the
//! others. Optimizer state per rank falls as 1/N (AdamW's is 8 of the 16 bytes a parameter
//! costs in fp32). Gradients are still averaged whole, so the global-norm clip is computed as
//! before. In checkpoints every rank writes its own state as one shard (`optimizer-R-of-W`)
//! and rank 0 an index of them, so no rank gathers another's; entries are found by name, so a
//! run resumes on any number of ranks with or without sharding (`palisade checkpoint
//! consolidate` merges the shards into one file). With `parallel.tp` each tensor-parallel
//! position is its own ZeRO group over its slices; the first position writes the shards, their
//! tensors gathered whole over the tensor-parallel group.

use super::Mesh;
use crate::error::{io_at, Result, TrainerError};
use palisade_sharding::broadcast_bucketed;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// Which rank owns each trainable parameter's update and optimizer state.
pub struct OptimizerShards {
    /// Parameter names in name order, as every rank lists them.
    names: Vec<String>,
    /// Shallow handles to the parameters, same order.
    params: Vec<Tensor>,
    /// Owner of each.
    owner: Vec<usize>,
    /// Gathered where it is used (`parallel.shard: full`'s block parameters): not broadcast.
    on_use: Vec<bool>,
    /// Split over several ranks: the same answer on every rank (a rank that owns everything,
    /// as rank 0 does when there is one parameter, still takes part in the collectives).
    sharded: bool,
    /// Writes its shard in checkpoints: the first rank of each tensor-parallel group (the
    /// others hold the same entries, gathered whole).
    writes: bool,
    rank: usize,
    world: usize,
    bucket_bytes: usize,
}

/// Deals parameters of `sizes` elements to `world` ranks: largest first, each to the rank
/// holding the fewest elements so far (the lowest such rank on ties); the same on every rank.
pub fn deal(sizes: &[i64], world: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(sizes[i]), i));
    let mut load = vec![0i64; world.max(1)];
    let mut owner = vec![0; sizes.len()];
    for i in order {
        let r = (0..load.len()).min_by_key(|&r| (load[r], r)).unwrap_or(0);
        owner[i] = r;
        load[r] += sizes[i];
    }
    owner
}

impl OptimizerShards {
    /// Owners of `trainable` (name order) over `mesh`'s `dp` ranks; with `sharded` false (or
    /// one rank) this rank owns everything. The parameters for which `apart` is true are dealt
    /// among themselves (`parallel.shard: full`'s block parameters, so that each rank stores
    /// a fair share of them, not only of the optimizer state).
    pub fn new(
        trainable: &[(String, Tensor)],
        mesh: &Mesh,
        sharded: bool,
        bucket_bytes: usize,
        apart: impl Fn(&str) -> bool,
    ) -> OptimizerShards {
        let (rank, world) = (mesh.dp().rank(), mesh.dp().world_size());
        let sizes: Vec<i64> = trainable.iter().map(|(_, t)| t.numel() as i64).collect();
        let sharded = sharded && world > 1;
        let mut owner = vec![rank; sizes.len()];
        if sharded {
            for class in [false, true] {
                let ix: Vec<usize> = (0..trainable.len())
                    .filter(|&i| apart(&trainable[i].0) == class)
                    .collect();
                let dealt = deal(&ix.iter().map(|&i| sizes[i]).collect::<Vec<_>>(), world);
                for (i, r) in ix.into_iter().zip(dealt) {
                    owner[i] = r;
                }
            }
        }
        OptimizerShards {
            on_use: vec![false; sizes.len()],
            names: trainable.iter().map(|(n, _)| n.clone()).collect(),
            params: trainable.iter().map(|(_, t)| t.shallow_clone()).collect(),
            owner,
            sharded,
            writes: mesh.tp().is_none_or(|g| g.rank() == 0),
            rank,
            world,
            bucket_bytes,
        }
    }

    /// The trainable parameters' names, in name order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The trainable parameters, in name order (every rank's, not only this rank's share).
    pub fn params(&self) -> &[Tensor] {
        &self.params
    }

    /// Whether the state is split over several ranks.
    pub fn is_sharded(&self) -> bool {
        self.sharded
    }

    /// The parameters this rank updates, from `params` (name order).
    pub fn owned(&self, params: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
        params
            .into_iter()
            .filter(|(n, _)| self.owner_of(n) == Some(self.rank))
            .collect()
    }

    /// Elements of the parameters this rank updates, and of all.
    pub fn owned_elements(&self) -> (i64, i64) {
        let size = |i: usize| self.params[i].numel() as i64;
        let mine = (0..self.params.len())
            .filter(|&i| self.owner[i] == self.rank)
            .map(size)
            .sum();
        (mine, (0..self.params.len()).map(size).sum())
    }

    /// The rank that updates the trainable parameter `name`.
    pub fn owner(&self, name: &str) -> Option<usize> {
        self.owner_of(name)
    }

    /// Marks the parameters for which `held` is true as gathered where they are used
    /// (`parallel.shard: full`): the updates broadcast skips them.
    pub fn gather_on_use(&mut self, held: impl Fn(&str) -> bool) {
        for (n, f) in self.names.iter().zip(self.on_use.iter_mut()) {
            *f = held(n);
        }
    }

    fn owner_of(&self, name: &str) -> Option<usize> {
        self.names
            .binary_search_by(|n| n.as_str().cmp(name))
            .ok()
            .map(|i| self.owner[i])
    }

    /// Whether this rank keeps the entry `key` of a consolidated optimizer state (`SLOT.PARAM`,
    /// as the optimizers name them); entries of unknown parameters are kept, for the optimizer
    /// to refuse by name.
    pub fn owns_state(&self, key: &str) -> bool {
        key.split_once('.')
            .and_then(|(_, p)| self.owner_of(p))
            .is_none_or(|r| r == self.rank)
    }

    /// This rank's entries of the optimizer state in the checkpoint folder `dir` (one file, or
    /// shards with an index, written at any world size), read one by one: no rank reads (or
    /// holds) the others' state.
    pub fn read_owned_state(&self, dir: &Path) -> Result<Vec<(String, Tensor)>> {
        let w = crate::checkpoint::open_optimizer(dir)?;
        let keys: Vec<String> = w
            .names()
            .filter(|k| self.owns_state(k))
            .map(str::to_string)
            .collect();
        keys.into_iter()
            .map(|k| Ok((k.clone(), w.read(&k)?)))
            .collect()
    }

    /// After the owners' optimizer steps, every parameter on every rank from its owner.
    pub fn broadcast_updates(&self, mesh: &Mesh) -> Result<()> {
        if !self.is_sharded() {
            return Ok(());
        }
        for root in 0..self.world {
            let mut owned: Vec<Tensor> = (0..self.params.len())
                .filter(|&i| self.owner[i] == root && !self.on_use[i])
                .map(|i| self.params[i].shallow_clone())
                .collect();
            tch::no_grad(|| broadcast_bucketed(mesh.dp(), &mut owned, root, self.bucket_bytes))?;
        }
        Ok(())
    }

    /// Prepares this step's optimizer state for a checkpoint. Unsharded, rank 0 returns it
    /// whole (the others `None`). Sharded, every rank (of the first tensor-parallel position)
    /// writes its own entries (`mine`) as a shard
    /// under `staging` and tells rank 0 their names, which returns the shards and their index:
    /// no rank ever holds another's state.
    pub fn save_state(
        &self,
        mesh: &Mesh,
        staging: &Path,
        mine: impl FnOnce() -> Vec<(String, Tensor)>,
    ) -> Result<Option<SavedState>> {
        if !self.is_sharded() {
            return Ok((self.rank == 0).then(|| SavedState::Whole(mine())));
        }
        let mine = mine();
        // A data-parallel group is one tensor-parallel position: it writes, or none of it does.
        if !self.writes {
            return Ok(None);
        }
        std::fs::create_dir_all(staging).map_err(io_at(staging))?;
        let file = shard_name(self.rank, self.world);
        palisade_model::weights::write_atomic(&mine, &staging.join(&file))?;
        let listing = Listing {
            names: mine.iter().map(|(n, _)| n.clone()).collect(),
            bytes: palisade_model::weights::safetensors::byte_size(&mine),
        };
        drop(mine);
        // Every rank's entry names (small beside the tensors), for rank 0's index.
        let encoded = serde_json::to_vec(&listing).expect("names serialise");
        let listings = palisade_sharding::all_gather_bytes(mesh.dp(), &encoded)?;
        if self.rank != 0 {
            return Ok(None);
        }
        let mut weight_map = serde_json::Map::new();
        let mut bytes = 0;
        let mut files = Vec::new();
        for (src, encoded) in listings.iter().enumerate() {
            let l: Listing = serde_json::from_slice(encoded).map_err(|e| {
                TrainerError::Config(format!("optimizer shard listing of rank {src}: {e}"))
            })?;
            let file = shard_name(src, self.world);
            for n in l.names {
                weight_map.insert(n, file.clone().into());
            }
            bytes += l.bytes;
            files.push(file);
        }
        Ok(Some(SavedState::Shards {
            staging: staging.to_path_buf(),
            files,
            weight_map,
            bytes,
        }))
    }
}

/// Optimizer state on its way into a checkpoint folder (rank 0's view).
pub enum SavedState {
    /// The whole state, written as one `optimizer.safetensors`.
    Whole(Vec<(String, Tensor)>),
    /// Every rank's shard, already written under `staging`, and the index's map.
    Shards {
        /// Where the ranks wrote their shards (beside the checkpoints).
        staging: PathBuf,
        /// The shard files, rank order.
        files: Vec<String>,
        /// Entry name → shard file.
        weight_map: serde_json::Map<String, serde_json::Value>,
        /// Bytes of all shards' tensors.
        bytes: u64,
    },
}

impl SavedState {
    /// Puts the state into the checkpoint folder `dir` being filled: writes the whole file, or
    /// moves the shards in (a rename on the same file system) and writes their index.
    pub fn place(&self, dir: &Path) -> Result<()> {
        match self {
            SavedState::Whole(t) => Ok(palisade_model::weights::write_atomic(
                t,
                &dir.join(crate::checkpoint::OPTIMIZER_FILE),
            )?),
            SavedState::Shards {
                staging,
                files,
                weight_map,
                bytes,
            } => {
                for f in files {
                    let from = staging.join(f);
                    std::fs::rename(&from, dir.join(f)).map_err(io_at(&from))?;
                }
                Ok(palisade_model::weights::write_index(
                    &dir.join(crate::checkpoint::OPTIMIZER_INDEX),
                    weight_map.clone(),
                    *bytes,
                )?)
            }
        }
    }

    /// Removes the staging folder, whether or not the checkpoint was written.
    pub fn clean_up(&self) {
        if let SavedState::Shards { staging, .. } = self {
            let _ = std::fs::remove_dir_all(staging);
        }
    }
}

/// The shard file of `rank` of `world`.
fn shard_name(rank: usize, world: usize) -> String {
    format!("optimizer-{:05}-of-{world:05}.safetensors", rank + 1)
}

/// A rank's shard, as rank 0 indexes it.
#[derive(serde::Serialize, serde::Deserialize)]
struct Listing {
    names: Vec<String>,
    bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn parameters_are_dealt_largest_first_to_the_least_loaded_rank() {
        let sizes = [10, 400, 30, 300, 100, 100, 60];
        let owner = deal(&sizes, 2);
        assert_eq!(owner, deal(&sizes, 2), "deterministic");
        let load = |r| -> i64 {
            (0..sizes.len())
                .filter(|&i| owner[i] == r)
                .map(|i| sizes[i])
                .sum()
        };
        // 1000 elements: 400+60+30+10 = 500 and 300+100+100 = 500.
        assert_eq!((load(0), load(1)), (500, 500), "{owner:?}");
        assert_eq!(deal(&sizes, 1), vec![0; 7]);
        // More ranks than parameters: every parameter has an owner, some ranks none.
        let owner = deal(&[5, 5], 4);
        assert_eq!(owner, vec![0, 1]);
    }

    #[test]
    fn state_entries_follow_their_parameter() {
        let mesh = Mesh::new(Box::new(palisade_sharding::SingleProcess));
        let t = |n: &str| {
            (
                n.to_string(),
                Tensor::zeros([2], (Kind::Float, tch::Device::Cpu)),
            )
        };
        let mut s = OptimizerShards::new(&[t("a.w"), t("b.w")], &mesh, true, 1 << 20, |_| false);
        // As on rank 0 of two; whether it is sharded is the same answer on every rank.
        s.owner = vec![0, 1];
        s.sharded = true;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("optimizer.safetensors");
        let ckpt = dir.path();
        let state = [
            "exp_avg.a.w",
            "exp_avg.b.w",
            "exp_avg_sq.a.w",
            "v_row.b.w",
            "m.gone",
        ];
        palisade_model::weights::write_atomic(&state.map(t), &path).unwrap();
        let kept: Vec<String> = s
            .read_owned_state(ckpt)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        // Another rank's entries are never read; an unknown parameter's is, to be refused.
        assert_eq!(kept, ["exp_avg.a.w", "exp_avg_sq.a.w", "m.gone"]);
        assert!(s.is_sharded());
        assert_eq!(s.owned_elements(), (2, 4));
    }
}
