//! YAML documents as trees: `base:` inheritance, `--set a.b.c=value` overrides, and a record of
//! which file (or override) set each key, so errors can name where a bad key came from.

use crate::error::{Result, TrainerError};
use serde_norway::{Mapping, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A merged YAML tree and the origin of each key path.
#[derive(Debug, Clone)]
pub struct YamlTree {
    /// The merged document.
    pub root: Value,
    /// Key path (`train.lr`, `model.vision.preset`) → file or `--set` that last set it.
    pub origins: BTreeMap<String, String>,
    /// The top-level file.
    pub file: PathBuf,
}

impl YamlTree {
    /// Reads `path`, following `base:` (relative to the file) recursively.
    pub fn load(path: &Path) -> Result<YamlTree> {
        let mut seen = Vec::new();
        let (root, origins) = load_with_bases(path, &mut seen)?;
        Ok(YamlTree {
            root,
            origins,
            file: path.to_path_buf(),
        })
    }

    /// Applies `key.path=value` overrides; the value is parsed as YAML (`3`, `1e-3`, `[1, 2]`, `cuda`).
    pub fn apply_sets(&mut self, sets: &[String]) -> Result<()> {
        for set in sets {
            let (key, raw) = set.split_once('=').ok_or_else(|| {
                TrainerError::Config(format!("--set {set:?}: expected KEY.PATH=VALUE"))
            })?;
            let value: Value = serde_norway::from_str(raw).map_err(|e| {
                TrainerError::Config(format!("--set {key}: value {raw:?} is not valid YAML: {e}"))
            })?;
            let parts: Vec<&str> = key.split('.').collect();
            if parts.iter().any(|p| p.is_empty()) {
                return Err(TrainerError::Config(format!(
                    "--set {set:?}: empty key segment"
                )));
            }
            set_path(&mut self.root, &parts, value).map_err(|at| {
                TrainerError::Config(format!(
                    "--set {key}: {at} is not a mapping, cannot set a key inside it"
                ))
            })?;
            record(&mut self.origins, key, "--set");
        }
        Ok(())
    }

    /// Where `key` was set, for error messages.
    pub fn origin_of(&self, key: &str) -> String {
        let mut k = key.to_string();
        loop {
            if let Some(o) = self.origins.get(&k) {
                return o.clone();
            }
            match k.rfind('.') {
                Some(i) => k.truncate(i),
                None => return self.file.display().to_string(),
            }
        }
    }
}

fn record(origins: &mut BTreeMap<String, String>, key: &str, origin: &str) {
    origins.retain(|k, _| !(k == key || k.starts_with(&format!("{key}."))));
    origins.insert(key.to_string(), origin.to_string());
}

fn load_with_bases(
    path: &Path,
    seen: &mut Vec<PathBuf>,
) -> Result<(Value, BTreeMap<String, String>)> {
    let canon = path.canonicalize().map_err(|e| TrainerError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    if seen.contains(&canon) {
        return Err(TrainerError::Config(format!(
            "{}: `base:` chain loops back to this file",
            path.display()
        )));
    }
    seen.push(canon);
    let text = std::fs::read_to_string(path).map_err(|e| TrainerError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let mut doc: Value = serde_norway::from_str(&text)
        .map_err(|e| TrainerError::Config(format!("{}: not valid YAML: {e}", path.display())))?;
    if doc.is_null() {
        doc = Value::Mapping(Mapping::new());
    }
    let Value::Mapping(map) = &mut doc else {
        return Err(TrainerError::Config(format!(
            "{}: the top level must be a mapping of keys",
            path.display()
        )));
    };
    let base = map.remove("base");
    let mut origins = BTreeMap::new();
    let mut merged = match base {
        None | Some(Value::Null) => Value::Mapping(Mapping::new()),
        Some(Value::String(b)) => {
            let base_path = path.parent().unwrap_or(Path::new(".")).join(&b);
            let (v, o) = load_with_bases(&base_path, seen)?;
            origins = o;
            v
        }
        Some(other) => {
            return Err(TrainerError::Config(format!(
                "{}: key base: expected a file path, got {other:?}",
                path.display()
            )))
        }
    };
    let origin = path.display().to_string();
    merge(&mut merged, doc, "", &mut |k| {
        record(&mut origins, k, &origin)
    });
    Ok((merged, origins))
}

/// Deep-merges `over` into `base`: mappings merge key by key, anything else replaces.
fn merge(base: &mut Value, over: Value, prefix: &str, on_set: &mut dyn FnMut(&str)) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                let key = match k.as_str() {
                    Some(s) if prefix.is_empty() => s.to_string(),
                    Some(s) => format!("{prefix}.{s}"),
                    None => format!("{prefix}.?"),
                };
                match b.get_mut(&k) {
                    Some(existing) if existing.is_mapping() && v.is_mapping() => {
                        merge(existing, v, &key, on_set)
                    }
                    _ => {
                        on_set(&key);
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

fn set_path(root: &mut Value, parts: &[&str], value: Value) -> std::result::Result<(), String> {
    let mut cur = root;
    for (i, p) in parts.iter().enumerate() {
        if cur.is_null() {
            *cur = Value::Mapping(Mapping::new());
        }
        let Value::Mapping(m) = cur else {
            return Err(parts[..i].join("."));
        };
        if i + 1 == parts.len() {
            m.insert(Value::String(p.to_string()), value);
            return Ok(());
        }
        cur = m.entry(Value::String(p.to_string())).or_insert(Value::Null);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_merge_and_sets_track_origins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("base.yaml"), "a: {x: 1, y: 2}\nb: keep\n").unwrap();
        std::fs::write(dir.path().join("top.yaml"), "base: base.yaml\na: {y: 3}\n").unwrap();
        let mut t = YamlTree::load(&dir.path().join("top.yaml")).unwrap();
        t.apply_sets(&["a.z=[1, 2]".into(), "c.d=cuda".into()])
            .unwrap();
        let v = &t.root;
        assert_eq!(v["a"]["x"].as_i64(), Some(1));
        assert_eq!(v["a"]["y"].as_i64(), Some(3));
        assert_eq!(v["a"]["z"].as_sequence().map(|s| s.len()), Some(2));
        assert_eq!(v["c"]["d"].as_str(), Some("cuda"));
        assert!(t.origin_of("a.x").ends_with("base.yaml"));
        assert!(t.origin_of("a.y").ends_with("top.yaml"));
        assert_eq!(t.origin_of("c.d"), "--set");
        assert!(t
            .apply_sets(&["b.q=1".into()])
            .unwrap_err()
            .to_string()
            .contains("b is not a mapping"));
        assert!(t.apply_sets(&["novalue".into()]).is_err());
    }

    #[test]
    fn base_loops_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), "base: b.yaml\n").unwrap();
        std::fs::write(dir.path().join("b.yaml"), "base: a.yaml\n").unwrap();
        let err = YamlTree::load(&dir.path().join("a.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("loops"), "{err}");
    }
}
