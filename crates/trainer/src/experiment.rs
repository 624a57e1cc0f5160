//! Reading an experiment config: YAML with `base:` inheritance and `--set` overrides, typed
//! (unknown keys refused with their key path and file), then checked — what every stage needs,
//! then what its stage kind needs.

use crate::config::ExperimentConfig;
use crate::error::{Result, TrainerError};
use crate::stages;
use crate::yaml_tree::YamlTree;
use std::path::Path;

impl ExperimentConfig {
    /// Loads `path`, applies `sets`, and checks every key and value.
    pub fn load(path: &Path, sets: &[String]) -> Result<ExperimentConfig> {
        let mut tree = YamlTree::load(path)?;
        tree.apply_sets(sets)?;
        Self::from_tree(&tree)
    }

    /// Deserialises a merged tree, naming the key path and its file on error.
    pub fn from_tree(tree: &YamlTree) -> Result<ExperimentConfig> {
        let de = tree.root.clone();
        let cfg: ExperimentConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.inner().to_string();
            // For an unknown field, point at the offending key itself.
            let key = match inner.split('`').nth(1) {
                Some(field) if inner.starts_with("unknown field") => {
                    if path == "." || path.is_empty() {
                        field.to_string()
                    } else if path == field || path.ends_with(&format!(".{field}")) {
                        path
                    } else {
                        format!("{path}.{field}")
                    }
                }
                _ => path,
            };
            TrainerError::Config(format!("{}: key {key}: {inner}", tree.origin_of(&key)))
        })?;
        let checked = stages::kind(&cfg.stage)
            .and_then(|kind| cfg.validate().and_then(|()| kind.validate(&cfg)))
            .and_then(|()| preset_conflicts(tree));
        checked.map_err(|e| {
            let origin =
                key_in(&e).map_or_else(|| tree.file.display().to_string(), |k| tree.origin_of(k));
            TrainerError::Config(format!("{origin}: {e}"))
        })?;
        Ok(cfg)
    }
}

/// The key path a check's message is about (`key train.lr: ...`, `model.vision.preset: ...`).
fn key_in(msg: &str) -> Option<&str> {
    let rest = msg
        .strip_prefix("key ")
        .or_else(|| msg.strip_prefix("keys "))
        .unwrap_or(msg);
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(rest.len());
    let key = rest[..end].trim_end_matches('.');
    (key.contains('.') || matches!(key, "name" | "stage" | "seed" | "device" | "threads"))
        .then_some(key)
}

/// Sizes that a tower's `preset` fills in unless the key is set.
const PRESET_FIELDS: &[&str] = &[
    "patch_size",
    "hidden_size",
    "num_hidden_layers",
    "intermediate_size",
    "num_attention_heads",
];

/// Refuses a tower whose `preset` is set at a later level (a child config, `--set`) than one
/// of the sizes it would fill: the earlier explicit size silently wins over the preset today
/// (a child's `preset: S/16` under a base's `patch_size: 8` trains at patch 8).
fn preset_conflicts(tree: &YamlTree) -> std::result::Result<(), String> {
    for tower in ["model.vision", "model.text", "model.language"] {
        let preset_key = format!("{tower}.preset");
        if !tree.has(&preset_key) {
            continue;
        }
        let preset_at = tree.origin_of(&preset_key);
        for field in PRESET_FIELDS {
            let key = format!("{tower}.{field}");
            if !tree.has(&key) {
                continue;
            }
            let field_at = tree.origin_of(&key);
            if tree.level(&field_at) < tree.level(&preset_at) {
                return Err(format!(
                    "key {key}: this value overrides the size of the preset that {preset_at} \
                     sets later ({preset_key}), so the model would not be that preset; set {key} \
                     beside the preset to keep it, or remove it here"
                ));
            }
        }
    }
    Ok(())
}
