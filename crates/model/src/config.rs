//! Model configs. [`SiglipConfig`] mirrors transformers' `config.json` (so a checkpoint folder
//! loads in transformers and back); [`VisionSpec`]/[`TextSpec`] are the YAML side: a preset name
//! plus any field to override.

use crate::error::{ModelError, Result};
use crate::presets;
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
fn gelu_tanh() -> String {
    "gelu_pytorch_tanh".into()
}
fn ln_eps() -> f64 {
    1e-6
}
fn yes() -> bool {
    true
}
fn vision_type() -> String {
    "siglip_vision_model".into()
}
fn text_type() -> String {
    "siglip_text_model".into()
}
fn siglip_type() -> String {
    "siglip".into()
}
fn architectures() -> Vec<String> {
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
        let text = serde_json::to_string_pretty(self).map_err(|source| ModelError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        std::fs::write(path, text).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })
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

/// YAML side of the image tower: a preset and optional overrides of any field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisionSpec {
    /// Preset such as `tiny`, `B/16`, `So400m/14`, `G/14`.
    pub preset: String,
    /// Input resolution (default 224).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
    /// Patch size (default from the preset name, else 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_size: Option<usize>,
    /// Override of the preset's width.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden_size: Option<usize>,
    /// Override of the preset's depth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_hidden_layers: Option<usize>,
    /// Override of the preset's MLP size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intermediate_size: Option<usize>,
    /// Override of the preset's heads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_attention_heads: Option<usize>,
}

/// YAML side of the text tower: a preset and optional overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextSpec {
    /// Size preset such as `tiny`, `B`, `So400m`.
    pub preset: String,
    /// Longest text in tokens (default 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_len: Option<usize>,
    /// Vocabulary size (default: the tokenizer's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab_size: Option<usize>,
    /// Override of the preset's width.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden_size: Option<usize>,
    /// Override of the preset's depth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_hidden_layers: Option<usize>,
    /// Override of the preset's MLP size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intermediate_size: Option<usize>,
    /// Override of the preset's heads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_attention_heads: Option<usize>,
}

/// YAML side of PaLI's language model: a T5/UL2 preset and optional overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanguageSpec {
    /// Preset: `mu`, `tiny`, `small`, `t5-v1_1-small`, `t5-v1_1-base`, `t5-v1_1-large`, `ul2-3b`.
    pub preset: String,
    /// Vocabulary size (default: the tokenizer's, location tokens included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab_size: Option<usize>,
    /// Override of the preset's encoder depth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_layers: Option<usize>,
    /// Override of the preset's decoder depth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_decoder_layers: Option<usize>,
}

impl LanguageSpec {
    /// Expands the preset with the tokenizer's vocabulary unless one is given.
    pub fn resolve(&self, tokenizer_vocab: usize) -> Result<crate::t5::T5Config> {
        let mut cfg =
            crate::t5::T5Config::preset(&self.preset, self.vocab_size.unwrap_or(tokenizer_vocab))?;
        if let Some(n) = self.num_layers {
            cfg.num_layers = n;
        }
        if self.num_decoder_layers.is_some() {
            cfg.num_decoder_layers = self.num_decoder_layers;
        }
        Ok(cfg)
    }
}

impl VisionSpec {
    /// Expands the preset and overrides into a full config.
    pub fn resolve(&self) -> Result<SiglipVisionConfig> {
        let (size, patch) = presets::parse_vision(&self.preset).ok_or_else(|| {
            ModelError::Config(format!(
                "model.vision.preset {:?} is unknown; expected SIZE or SIZE/PATCH with SIZE one of {}",
                self.preset,
                presets::names()
            ))
        })?;
        Ok(SiglipVisionConfig {
            hidden_size: self.hidden_size.unwrap_or(size.width),
            intermediate_size: self.intermediate_size.unwrap_or(size.mlp),
            num_hidden_layers: self.num_hidden_layers.unwrap_or(size.depth),
            num_attention_heads: self.num_attention_heads.unwrap_or(size.heads),
            num_channels: 3,
            image_size: self.image_size.unwrap_or(224),
            patch_size: self.patch_size.or(patch).unwrap_or(16),
            hidden_act: gelu_tanh(),
            layer_norm_eps: ln_eps(),
            vision_use_head: true,
            model_type: vision_type(),
        })
    }
}

impl TextSpec {
    /// Expands the preset; `vocab_size` comes from the spec or else the tokenizer, and the
    /// projection matches the image tower's width.
    pub fn resolve(&self, tokenizer_vocab: usize, vision_width: usize) -> Result<SiglipTextConfig> {
        let size = presets::lookup(&self.preset).ok_or_else(|| {
            ModelError::Config(format!(
                "model.text.preset {:?} is unknown; expected one of {}",
                self.preset,
                presets::names()
            ))
        })?;
        Ok(SiglipTextConfig {
            vocab_size: self.vocab_size.unwrap_or(tokenizer_vocab),
            hidden_size: self.hidden_size.unwrap_or(size.width),
            intermediate_size: self.intermediate_size.unwrap_or(size.mlp),
            num_hidden_layers: self.num_hidden_layers.unwrap_or(size.depth),
            num_attention_heads: self.num_attention_heads.unwrap_or(size.heads),
            max_position_embeddings: self.max_len.unwrap_or(64),
            hidden_act: gelu_tanh(),
            layer_norm_eps: ln_eps(),
            projection_size: Some(vision_width),
            pad_token_id: None,
            eos_token_id: None,
            model_type: text_type(),
        })
    }
}

impl SiglipConfig {
    /// Builds the two-tower config from YAML specs.
    pub fn from_specs(
        vision: &VisionSpec,
        text: &TextSpec,
        tokenizer_vocab: usize,
    ) -> Result<SiglipConfig> {
        let vision_config = vision.resolve()?;
        let text_config = text.resolve(tokenizer_vocab, vision_config.hidden_size)?;
        let cfg = SiglipConfig {
            vision_config,
            text_config,
            model_type: siglip_type(),
            architectures: architectures(),
        };
        cfg.validate().map_err(ModelError::Config)?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_resolve_and_validate() {
        let v = VisionSpec {
            preset: "B/16".into(),
            ..Default::default()
        };
        let t = TextSpec {
            preset: "B".into(),
            ..Default::default()
        };
        let cfg = SiglipConfig::from_specs(&v, &t, 32000).unwrap();
        assert_eq!(cfg.vision_config.grid(), 14);
        assert_eq!(cfg.text_config.projection(), 768);
        let bad = VisionSpec {
            preset: "B/16".into(),
            image_size: Some(100),
            ..Default::default()
        };
        let err = SiglipConfig::from_specs(&bad, &t, 10)
            .unwrap_err()
            .to_string();
        assert!(err.contains("image_size 100"), "{err}");
        let unknown = VisionSpec {
            preset: "Z".into(),
            ..Default::default()
        };
        assert!(unknown
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("model.vision.preset"));
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
