//! SigLIP's configs, field for field as transformers' `config.json`, every field optional with
//! transformers' own default (the hub's files, and `save_pretrained`, leave defaults out), so a
//! folder loads in transformers and back.

use crate::error::{ModelError, Result};
use crate::folder::{read_json_config, write_json_config};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The ViT tower, field for field as transformers' `SiglipVisionConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
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
    pub num_channels: usize,
    /// Square input resolution in pixels; a remainder the patches do not cover is dropped, as a
    /// stride-`patch_size` convolution does (So400m/14 at 384 px: 27 × 27 patches).
    pub image_size: usize,
    /// Square patch size in pixels.
    pub patch_size: usize,
    /// MLP activation (`gelu_pytorch_tanh` or `gelu`).
    pub hidden_act: String,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Whether the MAP pooling head exists.
    pub vision_use_head: bool,
    /// `siglip_vision_model`.
    pub model_type: String,
}

impl Default for SiglipVisionConfig {
    fn default() -> Self {
        SiglipVisionConfig {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            num_channels: 3,
            image_size: 224,
            patch_size: 16,
            hidden_act: gelu_tanh(),
            layer_norm_eps: ln_eps(),
            vision_use_head: true,
            model_type: vision_type(),
        }
    }
}

/// The text tower, field for field as transformers' `SiglipTextConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
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
    pub hidden_act: String,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Output size of the text head (defaults to `hidden_size`).
    pub projection_size: Option<usize>,
    /// Padding token id.
    pub pad_token_id: Option<i64>,
    /// Beginning-of-sequence token id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bos_token_id: Option<i64>,
    /// End-of-sequence token id.
    pub eos_token_id: Option<i64>,
    /// `siglip_text_model`.
    pub model_type: String,
}

impl Default for SiglipTextConfig {
    fn default() -> Self {
        SiglipTextConfig {
            vocab_size: 32000,
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            max_position_embeddings: 64,
            hidden_act: gelu_tanh(),
            layer_norm_eps: ln_eps(),
            projection_size: None,
            pad_token_id: Some(1),
            bos_token_id: Some(49406),
            eos_token_id: Some(49407),
            model_type: text_type(),
        }
    }
}

/// The SigLIP two-tower model, as transformers' `SiglipConfig` / `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SiglipConfig {
    /// Image tower.
    pub vision_config: SiglipVisionConfig,
    /// Text tower.
    pub text_config: SiglipTextConfig,
    /// `siglip` (SigLIP 2's fixed-resolution checkpoints are `siglip` too).
    pub model_type: String,
    /// `["SiglipModel"]`, so transformers' AutoModel picks the class.
    pub architectures: Vec<String>,
}

impl Default for SiglipConfig {
    fn default() -> Self {
        SiglipConfig {
            vision_config: SiglipVisionConfig::default(),
            text_config: SiglipTextConfig::default(),
            model_type: siglip_type(),
            architectures: architectures(),
        }
    }
}

pub(super) fn gelu_tanh() -> String {
    "gelu_pytorch_tanh".into()
}
pub(super) fn ln_eps() -> f64 {
    1e-6
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

/// Activations the towers implement.
const ACTIVATIONS: [&str; 4] = ["gelu_pytorch_tanh", "gelu", "gelu_new", "gelu_fast"];

impl SiglipTextConfig {
    /// Width of the text embedding after the head.
    pub fn projection(&self) -> usize {
        self.projection_size.unwrap_or(self.hidden_size)
    }
}

impl SiglipVisionConfig {
    /// Patches per side (the remainder of `image_size` is dropped).
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size.max(1)
    }

    /// Checks the invariants the model code relies on.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.patch_size == 0 || self.image_size < self.patch_size {
            return Err(format!(
                "image_size {} holds no patch of patch_size {}",
                self.image_size, self.patch_size
            ));
        }
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if !ACTIVATIONS.contains(&self.hidden_act.as_str()) {
            return Err(format!("hidden_act {:?} is not supported", self.hidden_act));
        }
        Ok(())
    }

    /// Reads the `config.json` of a vision-only `SiglipVisionModel` folder.
    pub fn load(path: &Path) -> Result<SiglipVisionConfig> {
        read_json_config(path, |c: &SiglipVisionConfig| {
            if c.model_type != "siglip_vision_model" {
                return Err(format!(
                    "model_type is {:?}, expected \"siglip_vision_model\"",
                    c.model_type
                ));
            }
            c.validate()
        })
    }

    /// The image tower of the model folder `dir`: a `SiglipModel`'s vision config, or a
    /// vision-only `SiglipVisionModel`'s config.
    pub fn of_folder(dir: &Path) -> Result<SiglipVisionConfig> {
        let path = dir.join(crate::folder::CONFIG_FILE);
        match crate::folder::model_type(dir)?.as_str() {
            "siglip_vision_model" => SiglipVisionConfig::load(&path),
            "siglip" => Ok(SiglipConfig::load(&path)?.vision_config),
            other => Err(ModelError::Config(format!(
                "{}: model_type {other:?} is not a SigLIP image tower (siglip or siglip_vision_model)",
                path.display()
            ))),
        }
    }

    /// Writes this as the `config.json` of a vision-only `SiglipVisionModel` folder.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut v = serde_json::to_value(self).map_err(|source| ModelError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        v["architectures"] = serde_json::json!(["SiglipVisionModel"]);
        write_json_config(path, &v)
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
                "model_type is {:?}, expected \"siglip\" (SigLIP, or SigLIP 2 at a fixed resolution)",
                self.model_type
            ));
        }
        v.validate().map_err(|e| format!("vision_config.{e}"))?;
        if t.num_attention_heads == 0 || !t.hidden_size.is_multiple_of(t.num_attention_heads) {
            return Err(format!(
                "text_config.hidden_size {} is not divisible by num_attention_heads {}",
                t.hidden_size, t.num_attention_heads
            ));
        }
        if !ACTIVATIONS.contains(&t.hidden_act.as_str()) {
            return Err(format!(
                "text_config.hidden_act {:?} is not supported",
                t.hidden_act
            ));
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
    fn a_hub_config_that_leaves_defaults_out_reads_as_transformers_does() {
        // google/siglip-base-patch16-224's config.json, as the hub has it.
        let json = r#"{"architectures": ["SiglipModel"], "initializer_factor": 1.0,
          "model_type": "siglip", "text_config": {"model_type": "siglip_text_model"},
          "torch_dtype": "float32", "transformers_version": "4.37.0.dev0",
          "vision_config": {"model_type": "siglip_vision_model", "patch_size": 16}}"#;
        let cfg: SiglipConfig = serde_json::from_str(json).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.vision_config, SiglipVisionConfig::default());
        assert_eq!(cfg.text_config.vocab_size, 32000);
        assert_eq!(cfg.text_config.max_position_embeddings, 64);
        assert_eq!(cfg.text_config.eos_token_id, Some(49407));
        // So400m/14 at 384 px: 27 × 27 patches, the 6-pixel remainder dropped.
        let so400m = SiglipVisionConfig {
            image_size: 384,
            patch_size: 14,
            ..Default::default()
        };
        so400m.validate().unwrap();
        assert_eq!(so400m.grid(), 27);
        let e = SiglipConfig {
            model_type: "siglip2".into(),
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.contains("siglip2"), "{e}");
    }

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
