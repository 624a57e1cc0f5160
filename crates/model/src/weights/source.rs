//! A model folder's weights as transformers publishes them: one `model.safetensors`, or shards
//! listed by `model.safetensors.index.json`. Tensors are read one at a time, on demand.

use super::safetensors::{Entry, SafetensorsFile};
use crate::error::{ModelError, Result};
use crate::folder::WEIGHTS_FILE;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// The index file of sharded weights.
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// Weights in one or several safetensors files.
#[derive(Debug)]
pub struct Weights {
    origin: PathBuf,
    files: Vec<SafetensorsFile>,
    /// Tensor name → index into `files`.
    by_name: BTreeMap<String, usize>,
}

impl Weights {
    /// One safetensors file.
    pub fn open_file(path: &Path) -> Result<Weights> {
        let file = SafetensorsFile::open(path)?;
        let by_name = file.entries().keys().map(|n| (n.clone(), 0)).collect();
        Ok(Weights {
            origin: path.to_path_buf(),
            files: vec![file],
            by_name,
        })
    }

    /// The weights of the model folder `dir`: `model.safetensors`, else the shards
    /// `model.safetensors.index.json` lists (each named when missing).
    pub fn open_dir(dir: &Path) -> Result<Weights> {
        Self::open_in(dir, WEIGHTS_FILE, INDEX_FILE)
    }

    /// The tensors in `dir` stored as the file `single`, else as the shards the index file
    /// `index` lists (each named when missing): the layout of model weights, and of sharded
    /// optimizer state.
    pub fn open_in(dir: &Path, single: &str, index: &str) -> Result<Weights> {
        let index_name = index;
        let single = dir.join(single);
        let index = dir.join(index);
        if single.exists() || !index.exists() {
            return Self::open_file(&single);
        }
        let text = std::fs::read_to_string(&index).map_err(|source| ModelError::Io {
            path: index.clone(),
            source,
        })?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| ModelError::Json {
                path: index.clone(),
                source,
            })?;
        let map = v["weight_map"]
            .as_object()
            .ok_or_else(|| ModelError::Weights {
                path: index.clone(),
                msg: "has no weight_map".into(),
            })?;
        let mut shard_names: Vec<&str> = map.values().filter_map(|f| f.as_str()).collect();
        shard_names.sort();
        shard_names.dedup();
        let mut files = Vec::new();
        let mut slot = BTreeMap::new();
        for name in shard_names {
            let path = dir.join(name);
            if !path.exists() {
                return Err(ModelError::Weights {
                    path: index.clone(),
                    msg: format!(
                        "lists shard {name}, which is missing from {}",
                        dir.display()
                    ),
                });
            }
            slot.insert(name.to_string(), files.len());
            files.push(SafetensorsFile::open(&path)?);
        }
        let mut by_name = BTreeMap::new();
        for (tensor, file) in map {
            let i = slot[file.as_str().unwrap_or_default()];
            if !files[i].entries().contains_key(tensor) {
                return Err(ModelError::Weights {
                    path: files[i].path().to_path_buf(),
                    msg: format!("tensor {tensor}: listed by {index_name} but not in this shard"),
                });
            }
            by_name.insert(tensor.clone(), i);
        }
        Ok(Weights {
            origin: index,
            files,
            by_name,
        })
    }

    /// What the weights were opened from (a file, or the index), for messages.
    pub fn origin(&self) -> &Path {
        &self.origin
    }

    /// Every tensor's name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// The stored entry of `name`.
    pub fn entry(&self, name: &str) -> Option<&Entry> {
        let i = *self.by_name.get(name)?;
        self.files[i].entries().get(name)
    }

    /// Reads `name` as stored, on the CPU.
    pub fn read(&self, name: &str) -> Result<Tensor> {
        match self.by_name.get(name) {
            Some(&i) => self.files[i].read(name),
            None => Err(ModelError::Weights {
                path: self.origin.clone(),
                msg: format!("tensor {name}: not in the weights"),
            }),
        }
    }

    /// Every tensor, read lazily, named as stored.
    pub fn lazy(&self) -> Vec<(String, Lazy<'_>)> {
        self.names()
            .map(|n| {
                let shape = self.entry(n).map(|e| e.shape.clone()).unwrap_or_default();
                let name = n.to_string();
                (name.clone(), Lazy::new(shape, move || self.read(&name)))
            })
            .collect()
    }
}

/// A tensor of known shape, read (or computed) only when it is loaded.
pub struct Lazy<'a> {
    shape: Vec<i64>,
    get: Box<dyn FnOnce() -> Result<Tensor> + 'a>,
}

impl<'a> Lazy<'a> {
    /// A tensor of `shape` that `get` produces.
    pub fn new(shape: Vec<i64>, get: impl FnOnce() -> Result<Tensor> + 'a) -> Lazy<'a> {
        Lazy {
            shape,
            get: Box::new(get),
        }
    }

    /// Its shape.
    pub fn shape(&self) -> &[i64] {
        &self.shape
    }

    /// The tensor.
    pub fn get(self) -> Result<Tensor> {
        (self.get)()
    }

    /// The tensor `f` makes of this one, of `shape`.
    pub fn map(self, shape: Vec<i64>, f: impl FnOnce(Tensor) -> Result<Tensor> + 'a) -> Lazy<'a> {
        let get = self.get;
        Lazy::new(shape, move || f(get()?))
    }
}

impl From<Tensor> for Lazy<'_> {
    fn from(t: Tensor) -> Self {
        Lazy::new(t.size(), move || Ok(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn sharded_weights_are_found_through_their_index_and_a_missing_shard_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let t = |v: f32| Tensor::from_slice(&[v, v]).to_kind(Kind::BFloat16);
        super::super::safetensors::write(
            &[("a".into(), t(1.0))],
            &dir.path().join("m-1.safetensors"),
        )
        .unwrap();
        super::super::safetensors::write(
            &[("b".into(), t(2.0))],
            &dir.path().join("m-2.safetensors"),
        )
        .unwrap();
        let index = serde_json::json!({"metadata": {"total_size": 8},
            "weight_map": {"a": "m-1.safetensors", "b": "m-2.safetensors"}});
        std::fs::write(dir.path().join(INDEX_FILE), index.to_string()).unwrap();
        let w = Weights::open_dir(dir.path()).unwrap();
        assert_eq!(w.names().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(w.entry("b").unwrap().kind, Kind::BFloat16);
        assert_eq!(w.read("b").unwrap().double_value(&[1]), 2.0);
        std::fs::remove_file(dir.path().join("m-2.safetensors")).unwrap();
        let e = Weights::open_dir(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("m-2.safetensors") && e.contains(INDEX_FILE),
            "{e}"
        );
    }
}
