//! A model folder as transformers' `save_pretrained` lays it out: `config.json` (with its
//! `model_type`), `model.safetensors`, and for PaLI the `tokenizer.json` it was trained with.
//! The one place these names are defined.

use crate::error::{ModelError, Result};
use std::path::Path;

/// The model's config, transformers-style.
pub const CONFIG_FILE: &str = "config.json";
/// The weights, named as transformers names them.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The tokenizer a PaLI folder was trained with (location tokens included).
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// The `model_type` recorded in a model folder's `config.json` (`siglip`, `pali`, `t5`).
pub fn model_type(dir: &Path) -> Result<String> {
    let path = dir.join(CONFIG_FILE);
    let v: serde_json::Value = read_json_config(&path, |_: &serde_json::Value| Ok(()))?;
    v["model_type"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| ModelError::Config(format!("{}: has no model_type", path.display())))
}

/// Reads a `config.json` and checks it with `validate`; errors name the file.
pub fn read_json_config<T: serde::de::DeserializeOwned>(
    path: &Path,
    validate: impl Fn(&T) -> std::result::Result<(), String>,
) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let cfg: T = serde_json::from_str(&text).map_err(|source| ModelError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    validate(&cfg).map_err(|e| ModelError::Config(format!("{}: {e}", path.display())))?;
    Ok(cfg)
}

/// Writes `cfg` as pretty JSON to `path`, whole.
pub fn write_json_config(path: &Path, cfg: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(cfg).map_err(|source| ModelError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(palisade_files::write(path, text)?)
}

/// Copies `from`'s tokenizer into the folder `to`, when `from` has one.
pub fn copy_tokenizer(from: &Path, to: &Path) -> Result<()> {
    let src = from.join(TOKENIZER_FILE);
    if src.exists() {
        let dst = to.join(TOKENIZER_FILE);
        std::fs::copy(&src, &dst).map_err(|source| ModelError::Io { path: src, source })?;
    }
    Ok(())
}
