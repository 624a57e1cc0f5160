//! Safetensors weights keyed by transformers' parameter names: strict loading that names every
//! missing, unexpected or mis-shaped tensor, and atomic saving.

use crate::error::{ModelError, Result};
use std::path::Path;
use tch::{nn, Tensor};

/// Tensors transformers may save that are buffers, not parameters.
fn is_ignorable_buffer(name: &str) -> bool {
    name.ends_with(".position_ids")
}

/// Reads all tensors of a safetensors file.
pub fn read(path: &Path) -> Result<Vec<(String, Tensor)>> {
    if !path.exists() {
        return Err(ModelError::Weights {
            path: path.to_path_buf(),
            msg: "file does not exist".into(),
        });
    }
    Tensor::read_safetensors(path).map_err(|e| ModelError::Weights {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })
}

/// Copies every variable of `vs` from `path`; any missing, unexpected or mis-shaped tensor is an
/// error that lists them all. Tensors of another float dtype are converted.
pub fn load_into(vs: &nn::VarStore, path: &Path) -> Result<()> {
    let file = read(path)?;
    load_tensors_into(vs, file, path)
}

/// As [`load_into`], from tensors already in memory (`origin` names them in errors).
pub fn load_tensors_into(
    vs: &nn::VarStore,
    tensors: Vec<(String, Tensor)>,
    origin: &Path,
) -> Result<()> {
    load_subset(vs, tensors, "", origin)
}

/// Loads the model variables whose names start with `prefix` from `tensors` (named as the model
/// names them), strictly: every such variable must be present with its shape, and every tensor
/// must be such a variable. Variables outside `prefix` are left as they are.
pub fn load_subset(
    vs: &nn::VarStore,
    tensors: Vec<(String, Tensor)>,
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
            Some(var) if var.size() == t.size() => pending.push((var, t)),
            Some(var) => problems.push(format!(
                "tensor {name}: shape {:?} in file, model expects {:?}",
                t.size(),
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
        for (mut var, t) in pending {
            var.f_copy_(&t.to_kind(var.kind()))?;
        }
        Ok::<(), tch::TchError>(())
    })?;
    Ok(())
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
    palisade_files::write_with(path, |tmp| {
        Tensor::write_safetensors(tensors, tmp).map_err(|e| ModelError::Weights {
            path: tmp.to_path_buf(),
            msg: e.to_string(),
        })
    })
}

/// Saves every variable of `vs` to `path` atomically.
pub fn save(vs: &nn::VarStore, path: &Path) -> Result<()> {
    write_atomic(&named_cpu(vs), path)
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
