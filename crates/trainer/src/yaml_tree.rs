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
    /// Every origin in the order applied: the base-most file first, then each child, then
    /// each `--set` (a later level overrides an earlier one).
    pub levels: Vec<String>,
}

impl YamlTree {
    /// Reads `path`, following `base:` (relative to the file) recursively.
    pub fn load(path: &Path) -> Result<YamlTree> {
        let mut seen = Vec::new();
        let (root, origins) = load_with_bases(path, &mut seen)?;
        let levels = seen.iter().rev().map(|(_, shown)| shown.clone()).collect();
        Ok(YamlTree {
            root,
            origins,
            file: path.to_path_buf(),
            levels,
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
            let origin = format!("--set {set}");
            record(&mut self.origins, key, &origin);
            self.levels.push(origin);
        }
        Ok(())
    }

    /// Where `key` was set, for error messages: the origin of the key or of the mapping that
    /// holds it, else of the latest key set inside it, else the top-level file.
    pub fn origin_of(&self, key: &str) -> String {
        let mut k = key.to_string();
        loop {
            if let Some(o) = self.origins.get(&k) {
                return o.clone();
            }
            match k.rfind('.') {
                Some(i) => k.truncate(i),
                None => break,
            }
        }
        let inside = format!("{key}.");
        self.origins
            .iter()
            .filter(|(k, _)| k.starts_with(&inside))
            .map(|(_, o)| o)
            .max_by_key(|o| self.level(o))
            .cloned()
            .unwrap_or_else(|| self.file.display().to_string())
    }

    /// This tree with `over` merged on top as one more level named `origin` (a recipe's stage).
    pub fn overlay(&self, over: Value, origin: &str) -> YamlTree {
        let mut out = self.clone();
        let mut origins = std::mem::take(&mut out.origins);
        merge(&mut out.root, over, "", &mut |k| {
            record(&mut origins, k, origin)
        });
        out.origins = origins;
        out.levels.push(origin.to_string());
        out
    }

    /// Removes the top-level `key` and returns its value.
    pub fn take(&mut self, key: &str) -> Option<Value> {
        match &mut self.root {
            Value::Mapping(m) => m.remove(key),
            _ => None,
        }
    }

    /// The position of `origin` in [`YamlTree::levels`] (later overrides earlier).
    pub fn level(&self, origin: &str) -> usize {
        self.levels.iter().position(|l| l == origin).unwrap_or(0)
    }

    /// Whether `key` (a dotted path) is present in the merged tree.
    pub fn has(&self, key: &str) -> bool {
        let mut cur = &self.root;
        for part in key.split('.') {
            match cur.get(part) {
                Some(v) => cur = v,
                None => return false,
            }
        }
        !cur.is_null()
    }
}

fn record(origins: &mut BTreeMap<String, String>, key: &str, origin: &str) {
    origins.retain(|k, _| !(k == key || k.starts_with(&format!("{key}."))));
    origins.insert(key.to_string(), origin.to_string());
}

/// Loads `path` and its bases; `seen` collects (canonical path, path as shown), top file first.
fn load_with_bases(
    path: &Path,
    seen: &mut Vec<(PathBuf, String)>,
) -> Result<(Value, BTreeMap<String, String>)> {
    let canon = path.canonicalize().map_err(|e| TrainerError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    if seen.iter().any(|(c, _)| *c == canon) {
        return Err(TrainerError::Config(format!(
            "{}: `base:` chain loops back to this file",
            path.display()
        )));
    }
    seen.push((canon, path.display().to_string()));
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
            if !base_path.exists() {
                return Err(TrainerError::Config(format!(
                    "{}: key base: {b:?} does not exist (looked for {})",
                    path.display(),
                    base_path.display()
                )));
            }
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

/// Sets `parts` in `root`; inside a list a part is an index or the `name:` of an element
/// (`stages.stage1.train.steps`).
fn set_path(root: &mut Value, parts: &[&str], value: Value) -> std::result::Result<(), String> {
    let mut cur = root;
    for (i, p) in parts.iter().enumerate() {
        if cur.is_null() {
            *cur = Value::Mapping(Mapping::new());
        }
        if let Value::Sequence(items) = cur {
            let at = p
                .parse::<usize>()
                .ok()
                .filter(|&k| k < items.len())
                .or_else(|| {
                    items
                        .iter()
                        .position(|it| it.get("name").and_then(Value::as_str) == Some(*p))
                });
            let Some(at) = at else {
                return Err(format!("{} (no element {p:?})", parts[..i].join(".")));
            };
            if i + 1 == parts.len() {
                items[at] = value;
                return Ok(());
            }
            cur = &mut items[at];
            continue;
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
        assert_eq!(t.origin_of("c.d"), "--set c.d=cuda");
        // A key not set anywhere is traced to what set keys inside it, the latest level first.
        assert_eq!(t.origin_of("c"), "--set c.d=cuda");
        assert!(t.level(&t.origin_of("a.x")) < t.level(&t.origin_of("a.y")));
        assert!(t.has("a.z") && !t.has("a.w"));
        assert!(t
            .apply_sets(&["b.q=1".into()])
            .unwrap_err()
            .to_string()
            .contains("b is not a mapping"));
        assert!(t.apply_sets(&["novalue".into()]).is_err());
        // Lists are entered by index or by an element's name.
        t.apply_sets(&["s=[{name: one, x: 1}, {name: two, x: 2}]".into()])
            .unwrap();
        t.apply_sets(&["s.two.x=5".into(), "s.0.x=4".into()])
            .unwrap();
        assert_eq!(t.root["s"][1]["x"].as_i64(), Some(5));
        assert_eq!(t.root["s"][0]["x"].as_i64(), Some(4));
        assert!(t.apply_sets(&["s.three.x=1".into()]).is_err());
        let stages = t.take("s").unwrap();
        let over = stages[1].clone();
        let staged = t.overlay(over, "stage two");
        assert_eq!(staged.root["x"].as_i64(), Some(5));
        assert_eq!(staged.origin_of("x"), "stage two");
        assert!(!t.has("s"));
    }

    #[test]
    fn a_missing_base_names_the_config_that_refers_to_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("top.yaml"), "base: nope.yaml\n").unwrap();
        let err = YamlTree::load(&dir.path().join("top.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("top.yaml: key base: \"nope.yaml\" does not exist"),
            "{err}"
        );
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
