//! SigLIP's configs, field for field as transformers' `config.json` (so a checkpoint folder loads
//! in transformers and back).

use crate::error::Result;
use crate::folder::{read_json_config, write_json_config};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The ViT tower, field for field as transformers' `SiglipVisionConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiglipVisionConfig {
    /// Token width.
    pub hidden_size: usize,
    /// MLP hidden size.
    pub intermediate_size: usize,
    /// Number of encoder blocks.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Input channels.
    #[serde(default = "three")]
    pub num_channels: usize,
    /// Square input resolution in pixels.
    pub image_size: usize,
    /// Square patch size in pixels.
    pub patch_size: usize,
    /// MLP activation (`gelu_pytorch_tanh` or `gelu`).
    #[serde(default = "gelu_tanh")]
    pub hidden_act: String,
    /// LayerNorm epsilon.
    #[serde(default = "ln_eps")]
    pub layer_norm_eps: f64,
    /// Whether the MAP pooling head exists.
    #[serde(default = "yes")]
    pub vision_use_head: bool,
    /// Always `siglip_vision_model`.
    #[serde(default = "vision_type")]
    pub model_type: String,
}

/// The text tower, field for field as transformers' `SiglipTextConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiglipTextConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Token width.
    pub hidden_size: usize,
    /// MLP hidden size.
    pub intermediate_size: usize,
    /// Number of encoder blocks.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Longest text in tokens.
    pub max_position_embeddings: usize,
    /// MLP activation.
    #[serde(default = "gelu_tanh")]
    pub hidden_act: String,
    /// LayerNorm epsilon.
    #[serde(default = "ln_eps")]
    pub layer_norm_eps: f64,
    /// Output size of the text head (defaults to `hidden_size`).
    #[serde(default)]
    pub projection_size: Option<usize>,
    /// Padding token id.
    #[serde(default)]
    pub pad_token_id: Option<i64>,
    /// End-of-sequence token id.
    #[serde(default)]
    pub eos_token_id: Option<i64>,
    /// Always `siglip_text_model`.
    #[serde(default = "text_type")]
    pub model_type: String,
}

/// The SigLIP two-tower model, as transformers' `SiglipConfig` / `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiglipConfig {
    /// Image tower.
    pub vision_config: SiglipVisionConfig,
    /// Text tower.
    pub text_config: SiglipTextConfig,
    /// Always `siglip`.
    #[serde(default = "siglip_type")]
    pub model_type: String,
    /// `["SiglipModel"]`, so transformers' AutoModel picks the class.
    #[serde(default = "architectures")]
    pub architectures: Vec<String>,
}

fn three() -> usize {
    3
}
pub(super) fn gelu_tanh() -> String {
    "gelu_pytorch_tanh".into()
}
pub(super) fn ln_eps() -> f64 {
    1e-6
}
fn yes() -> bool {
    true
}
pub(super) fn vision_type() -> String {
    "siglip_vision_model".into()
}
pub(super) fn text_type() -> String {
    "siglip_text_model".into()
}
pub(super) fn siglip_type() -> String {
    "siglip".into()
}
pub(super) fn architectures() -> Vec<String> {
    vec!["SiglipModel".into()]
}

impl SiglipTextConfig {
    /// Width of the text embedding after the head.
    pub fn projection(&self) -> usize {
        self.projection_size.unwrap_or(self.hidden_size)
    }
}

impl SiglipVisionConfig {
    /// Patches per side.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }
}

impl SiglipConfig {
    /// Reads a transformers-style `config.json`.
    pub fn load(path: &Path) -> Result<SiglipConfig> {
        read_json_config(path, SiglipConfig::validate)
    }

    /// Writes `config.json`.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_json_config(path, self)
    }

    /// Checks the invariants the model code relies on.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let v = &self.vision_config;
        let t = &self.text_config;
        if self.model_type != "siglip" {
            return Err(format!(
                "model_type is {:?}, expected \"siglip\"",
                self.model_type
            ));
        }
        if v.patch_size == 0 || !v.image_size.is_multiple_of(v.patch_size) {
            return Err(format!(
                "vision_config.image_size {} is not a multiple of patch_size {}",
                v.image_size, v.patch_size
            ));
        }
        for (name, width, heads) in [
            ("vision_config", v.hidden_size, v.num_attention_heads),
            ("text_config", t.hidden_size, t.num_attention_heads),
        ] {
            if heads == 0 || !width.is_multiple_of(heads) {
                return Err(format!(
                    "{name}.hidden_size {width} is not divisible by num_attention_heads {heads}"
                ));
            }
        }
        for (name, act) in [
            ("vision_config", &v.hidden_act),
            ("text_config", &t.hidden_act),
        ] {
            if !matches!(
                act.as_str(),
                "gelu_pytorch_tanh" | "gelu" | "gelu_new" | "gelu_fast"
            ) {
                return Err(format!("{name}.hidden_act {act:?} is not supported"));
            }
        }
        if t.projection() != v.hidden_size {
            return Err(format!(
                "text_config.projection_size {} must equal vision_config.hidden_size {} (the embeddings are compared)",
                t.projection(),
                v.hidden_size
            ));
        }
        if t.vocab_size == 0 || t.max_position_embeddings == 0 {
            return Err(
                "text_config.vocab_size and max_position_embeddings must be positive".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_transformers_config_json() {
        let json = r#"{"architectures":["SiglipModel"],"model_type":"siglip","initializer_factor":1.0,
          "text_config":{"vocab_size":50,"hidden_size":32,"intermediate_size":64,"num_hidden_layers":1,
            "num_attention_heads":4,"max_position_embeddings":8,"projection_size":32,"bos_token_id":4},
          "vision_config":{"hidden_size":32,"intermediate_size":64,"num_hidden_layers":1,
            "num_attention_heads":4,"image_size":16,"patch_size":8}}"#;
        let cfg: SiglipConfig = serde_json::from_str(json).unwrap();
        assert!(cfg.validate().is_ok());
        assert_eq!(cfg.vision_config.hidden_act, "gelu_pytorch_tanh");
    }
}
