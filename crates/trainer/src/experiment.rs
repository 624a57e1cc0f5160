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
                    } else {
                        format!("{path}.{field}")
                    }
                }
                _ => path,
            };
            TrainerError::Config(format!("{}: key {key}: {inner}", tree.origin_of(&key)))
        })?;
        let checked = stages::kind(&cfg.stage)
            .and_then(|kind| cfg.validate().and_then(|()| kind.validate(&cfg)));
        checked.map_err(|e| TrainerError::Config(format!("{}: {e}", tree.file.display())))?;
        Ok(cfg)
    }
}
