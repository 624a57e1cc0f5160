//! palisade's models over libtorch: the ViT image encoder, the text tower, the SigLIP two-tower
//! model with its sigmoid loss, and safetensors weights named as in Hugging Face transformers.
//!
//! Model code is single-device and plain; parallelism lives in `palisade-sharding`.

pub mod autocast;
pub mod config;
pub mod decoding;
pub mod distributed_loss;
pub mod error;
pub mod layers;
pub mod pali;
pub mod pooling;
pub mod presets;
pub mod siglip;
pub mod sigmoid_loss;
pub mod t5;
pub mod text;
pub mod vit;
pub mod weights;

pub use config::{
    LanguageSpec, SiglipConfig, SiglipTextConfig, SiglipVisionConfig, TextSpec, VisionSpec,
};
pub use error::{ModelError, Result};
pub use siglip::{SiglipModel, SiglipOutput};
pub use sigmoid_loss::sigmoid_loss;

/// The `model_type` recorded in a model folder's `config.json` (`siglip`, `pali`, `t5`).
pub fn model_type(dir: &std::path::Path) -> Result<String> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io {
        path: path.clone(),
        source,
    })?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|source| ModelError::Json {
        path: path.clone(),
        source,
    })?;
    v["model_type"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| ModelError::Config(format!("{}: has no model_type", path.display())))
}
