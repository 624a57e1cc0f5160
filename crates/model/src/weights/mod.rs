//! Safetensors weights keyed by transformers' parameter names: strict loading that names every
//! missing, unexpected or mis-shaped tensor, one tensor at a time (a model needs little more
//! memory to load than itself), from one file or an index of shards, stored in any float dtype;
//! and saving whole, in one file or in shards with an index.

pub mod safetensors;
mod source;

pub use source::{Lazy, Weights, INDEX_FILE};

use crate::error::{ModelError, Result};
use std::path::{Path, PathBuf};
use tch::{nn, Tensor};

/// Tensors transformers may save that are buffers, not parameters.
fn is_ignorable_buffer(name: &str) -> bool {
    name.ends_with(".position_ids")
}

/// Reads all tensors of a safetensors file, as stored.
pub fn read(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let w = Weights::open_file(path)?;
    w.names().map(|n| Ok((n.to_string(), w.read(n)?))).collect()
}

/// Copies every variable of `vs` from the safetensors file `path`; any missing, unexpected or
/// mis-shaped tensor is an error that lists them all. Tensors of another float dtype are
/// converted.
pub fn load_into(vs: &nn::VarStore, path: &Path) -> Result<()> {
    let w = Weights::open_file(path)?;
    load_lazy(vs, w.lazy(), "", w.origin())
}

/// As [`load_into`], from the weights of the model folder `dir` (one file or shards).
pub fn load_dir(vs: &nn::VarStore, dir: &Path) -> Result<()> {
    let w = Weights::open_dir(dir)?;
    load_lazy(vs, w.lazy(), "", w.origin())
}

/// As [`load_into`], from tensors already in memory (`origin` names them in errors).
pub fn load_tensors_into(
    vs: &nn::VarStore,
    tensors: Vec<(String, Tensor)>,
    origin: &Path,
) -> Result<()> {
    load_subset(vs, tensors, "", origin)
}

/// As [`load_lazy`], from tensors in memory.
pub fn load_subset(
    vs: &nn::VarStore,
    tensors: Vec<(String, Tensor)>,
    prefix: &str,
    origin: &Path,
) -> Result<()> {
    let lazy = tensors
        .into_iter()
        .map(|(n, t)| (n, Lazy::from(t)))
        .collect();
    load_lazy(vs, lazy, prefix, origin)
}

/// Loads the model variables whose names start with `prefix` from `tensors` (named as the model
/// names them), strictly: every such variable must be present with its shape, and every tensor
/// must be such a variable; nothing is loaded unless all fit. Variables outside `prefix` are
/// left as they are. Each tensor is read and copied on its own, converted to the variable's kind.
pub fn load_lazy(
    vs: &nn::VarStore,
    tensors: Vec<(String, Lazy<'_>)>,
    prefix: &str,
    origin: &Path,
) -> Result<()> {
    let mut vars: std::collections::HashMap<String, Tensor> = vs
        .variables()
        .into_iter()
        .filter(|(n, _)| n.starts_with(prefix))
        .collect();
    let mut problems = Vec::new();
    let mut pending = Vec::new();
    for (name, t) in tensors {
        match vars.remove(&name) {
            Some(var) if var.size() == t.shape() => pending.push((name, var, t)),
            Some(var) => problems.push(format!(
                "tensor {name}: shape {:?} in file, model expects {:?}",
                t.shape(),
                var.size()
            )),
            None if is_ignorable_buffer(&name) => {}
            None => problems.push(format!("tensor {name}: in the file but not in the model")),
        }
    }
    let mut missing: Vec<_> = vars.into_keys().collect();
    missing.sort();
    problems.extend(
        missing
            .into_iter()
            .map(|n| format!("tensor {n}: missing from the file")),
    );
    if !problems.is_empty() {
        problems.sort();
        let shown = problems.len().min(20);
        let more = if problems.len() > shown {
            format!("\n  … and {} more", problems.len() - shown)
        } else {
            String::new()
        };
        return Err(ModelError::Weights {
            path: origin.to_path_buf(),
            msg: format!(
                "weights do not match the model:\n  {}{more}",
                problems[..shown].join("\n  ")
            ),
        });
    }
    tch::no_grad(|| {
        for (name, mut var, t) in pending {
            let t = t.get()?;
            if t.size() != var.size() {
                return Err(ModelError::Weights {
                    path: origin.to_path_buf(),
                    msg: format!(
                        "tensor {name}: made {:?}, model expects {:?}",
                        t.size(),
                        var.size()
                    ),
                });
            }
            var.f_copy_(&t.to_kind(var.kind()))?;
        }
        Ok(())
    })
}

/// Renames tensors: those starting with `from` get it replaced by `to`; the rest are dropped.
pub fn select_prefix(
    tensors: Vec<(String, Tensor)>,
    from: &str,
    to: &str,
) -> Vec<(String, Tensor)> {
    tensors
        .into_iter()
        .filter_map(|(n, t)| n.strip_prefix(from).map(|rest| (format!("{to}{rest}"), t)))
        .collect()
}

/// Named tensors of `vs`, sorted by name, contiguous and on the CPU.
pub fn named_cpu(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut named: Vec<_> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.detach().to_device(tch::Device::Cpu).contiguous()))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

/// Writes named tensors to `path` whole (palisade-files).
pub fn write_atomic(tensors: &[(String, Tensor)], path: &Path) -> Result<()> {
    palisade_files::write_with(path, |tmp| safetensors::write(tensors, tmp))
}

/// Saves every variable of `vs` to `path` whole.
pub fn save(vs: &nn::VarStore, path: &Path) -> Result<()> {
    write_atomic(&named_cpu(vs), path)
}

/// The default size limit of one shard, as transformers' `save_pretrained` (5 GB).
pub const MAX_SHARD_BYTES: u64 = 5_000_000_000;

/// Writes `tensors` into the folder `dir` as transformers does: one `model.safetensors` when
/// they fit in `max_shard_bytes`, else `model-0000K-of-0000N.safetensors` shards of at most
/// that size (a larger tensor alone in its own) and `model.safetensors.index.json`. Returns
/// the files written.
pub fn save_sharded(
    tensors: &[(String, Tensor)],
    dir: &Path,
    max_shard_bytes: u64,
) -> Result<Vec<PathBuf>> {
    let total = safetensors::byte_size(tensors);
    if total <= max_shard_bytes {
        let path = dir.join(crate::folder::WEIGHTS_FILE);
        write_atomic(tensors, &path)?;
        return Ok(vec![path]);
    }
    let mut shards: Vec<Vec<(String, Tensor)>> = vec![Vec::new()];
    let mut bytes = 0u64;
    for (name, t) in tensors {
        let size = (t.numel() * t.kind().elt_size_in_bytes()) as u64;
        if bytes > 0 && bytes + size > max_shard_bytes {
            shards.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        if let Some(last) = shards.last_mut() {
            last.push((name.clone(), t.shallow_clone()));
        }
    }
    let n = shards.len();
    let mut written = Vec::new();
    let mut weight_map = serde_json::Map::new();
    for (i, shard) in shards.iter().enumerate() {
        let file = format!("model-{:05}-of-{n:05}.safetensors", i + 1);
        let path = dir.join(&file);
        write_atomic(shard, &path)?;
        for (name, _) in shard {
            weight_map.insert(name.clone(), file.clone().into());
        }
        written.push(path);
    }
    let path = dir.join(INDEX_FILE);
    write_index(&path, weight_map, total)?;
    written.push(path);
    Ok(written)
}

/// Writes a shard index as transformers does (`weight_map`: tensor name → shard file name,
/// `metadata.total_size` in bytes) to `path`.
pub fn write_index(
    path: &Path,
    weight_map: serde_json::Map<String, serde_json::Value>,
    total_bytes: u64,
) -> Result<()> {
    let index =
        serde_json::json!({"metadata": {"total_size": total_bytes}, "weight_map": weight_map});
    let text = serde_json::to_string_pretty(&index).map_err(|source| ModelError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(palisade_files::write(path, text)?)
}

/// Named parameters that require gradients (frozen towers are left out), sorted by name.
pub fn trainable(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut named: Vec<_> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

/// Converts every floating-point variable of `vs` to `kind` in place: the layers holding
/// them see the new kind (`train.precision: bf16`).
pub fn set_float_kind(vs: &nn::VarStore, kind: tch::Kind) {
    tch::no_grad(|| {
        for (_, mut t) in vs.variables() {
            if t.is_floating_point() && t.kind() != kind {
                t.set_data(&t.to_kind(kind));
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn store(seed: i64) -> nn::VarStore {
        tch::manual_seed(seed);
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let _ = (&root / "a").randn("weight", &[8, 4], 0.0, 1.0);
        let _ = (&root / "b").randn("weight", &[16], 0.0, 1.0);
        let _ = (&root / "c").randn("weight", &[3, 3], 0.0, 1.0);
        vs
    }

    #[test]
    fn sharded_bf16_weights_load_into_fp32_variables_exactly_as_rounded() {
        let dir = tempfile::tempdir().unwrap();
        let src = store(1);
        let bf16: Vec<(String, Tensor)> = named_cpu(&src)
            .into_iter()
            .map(|(n, t)| (n, t.to_kind(Kind::BFloat16)))
            .collect();
        // 40-byte shards: each tensor in its own file (64, 32 and 18 bytes), and an index.
        let written = save_sharded(&bf16, dir.path(), 40).unwrap();
        assert_eq!(written.len(), 4, "{written:?}");
        assert!(dir.path().join(INDEX_FILE).exists());
        let dst = store(2);
        load_dir(&dst, dir.path()).unwrap();
        for (n, t) in named_cpu(&dst) {
            let want = src.variables()[&n]
                .to_kind(Kind::BFloat16)
                .to_kind(Kind::Float);
            assert!(t.equal(&want), "{n}");
        }
        // Under the limit: one model.safetensors.
        let one = tempfile::tempdir().unwrap();
        let written = save_sharded(&bf16, one.path(), 1 << 20).unwrap();
        assert_eq!(written, [one.path().join(crate::folder::WEIGHTS_FILE)]);
    }

    #[test]
    fn a_mismatch_loads_nothing_and_names_every_tensor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let mut tensors = named_cpu(&store(1));
        tensors.retain(|(n, _)| n != "c.weight");
        tensors.push((
            "extra.weight".into(),
            Tensor::zeros([2], (Kind::Float, Device::Cpu)),
        ));
        tensors[0].1 = Tensor::zeros([8, 5], (Kind::Float, Device::Cpu));
        write_atomic(&tensors, &path).unwrap();
        let dst = store(2);
        let before = named_cpu(&dst);
        let e = load_into(&dst, &path).unwrap_err().to_string();
        for want in [
            "a.weight: shape [8, 5]",
            "c.weight: missing",
            "extra.weight: in the file",
        ] {
            assert!(e.contains(want), "{want}: {e}");
        }
        for ((_, a), (_, b)) in before.iter().zip(named_cpu(&dst)) {
            assert!(a.equal(&b), "nothing was loaded");
        }
    }
}
