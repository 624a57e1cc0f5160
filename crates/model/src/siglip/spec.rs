//! The YAML side of SigLIP's towers: a size preset plus any field to override, expanded into
//! the transformers-shaped configs. One spec type serves the image tower (`model.vision`) and
//! the text tower (`model.text`); each refuses the other's keys.

use super::config::{
    architectures, gelu_tanh, ln_eps, siglip_type, text_type, vision_type, SiglipConfig,
    SiglipTextConfig, SiglipVisionConfig,
};
use super::presets::{self, Size};
use crate::error::{ModelError, Result};
use serde::{Deserialize, Serialize};

/// A transformer tower in YAML: a preset and optional overrides of any of its sizes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TowerSpec {
    /// Size preset: `tiny`, `B`, `So400m`, …; the image tower takes `SIZE/PATCH` (`B/16`).
    /// Needed unless the tower comes from a model folder (PaLI's `model.init_vision`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// Image tower: input resolution (default 224).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
    /// Image tower: patch size (default from the preset name, else 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_size: Option<usize>,
    /// Text tower: longest text in tokens (default 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_len: Option<usize>,
    /// Text tower: vocabulary size (default: the tokenizer's).
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

/// The image tower's spec (`model.vision`).
pub type VisionSpec = TowerSpec;
/// The text tower's spec (`model.text`).
pub type TextSpec = TowerSpec;

impl TowerSpec {
    /// The preset's sizes with the overrides applied.
    fn size(&self, preset: Size) -> Size {
        Size {
            width: self.hidden_size.unwrap_or(preset.width),
            depth: self.num_hidden_layers.unwrap_or(preset.depth),
            mlp: self.intermediate_size.unwrap_or(preset.mlp),
            heads: self.num_attention_heads.unwrap_or(preset.heads),
        }
    }

    /// The preset's name, required under `key`.
    fn preset_named(&self, key: &str) -> Result<&str> {
        self.preset
            .as_deref()
            .ok_or_else(|| ModelError::Config(format!("{key}.preset: not set")))
    }

    /// Refuses keys of the other tower, set under `key`.
    fn refuse(&self, key: &str, others: &[(&str, bool)]) -> Result<()> {
        match others.iter().find(|(_, set)| *set) {
            Some((name, _)) => Err(ModelError::Config(format!(
                "{key}.{name}: not a key of this tower"
            ))),
            None => Ok(()),
        }
    }

    /// Expands the image tower (`model.vision`) into a full config.
    pub fn resolve(&self) -> Result<SiglipVisionConfig> {
        self.refuse(
            "model.vision",
            &[
                ("max_len", self.max_len.is_some()),
                ("vocab_size", self.vocab_size.is_some()),
            ],
        )?;
        let name = self.preset_named("model.vision")?;
        let (preset, patch) = presets::parse_vision(name).ok_or_else(|| {
            ModelError::Config(format!(
                "model.vision.preset {name:?} is unknown; expected SIZE or SIZE/PATCH with SIZE one of {}",
                presets::names()
            ))
        })?;
        let size = self.size(preset);
        Ok(SiglipVisionConfig {
            hidden_size: size.width,
            intermediate_size: size.mlp,
            num_hidden_layers: size.depth,
            num_attention_heads: size.heads,
            num_channels: 3,
            image_size: self.image_size.unwrap_or(224),
            patch_size: self.patch_size.or(patch).unwrap_or(16),
            hidden_act: gelu_tanh(),
            layer_norm_eps: ln_eps(),
            vision_use_head: true,
            model_type: vision_type(),
        })
    }

    /// Expands the text tower (`model.text`); `vocab_size` comes from the spec or else the
    /// tokenizer, and the projection matches the image tower's width.
    pub fn resolve_text(
        &self,
        tokenizer_vocab: usize,
        vision_width: usize,
    ) -> Result<SiglipTextConfig> {
        self.refuse(
            "model.text",
            &[
                ("image_size", self.image_size.is_some()),
                ("patch_size", self.patch_size.is_some()),
            ],
        )?;
        let name = self.preset_named("model.text")?;
        let preset = presets::lookup(name).ok_or_else(|| {
            ModelError::Config(format!(
                "model.text.preset {name:?} is unknown; expected one of {}",
                presets::names()
            ))
        })?;
        let size = self.size(preset);
        Ok(SiglipTextConfig {
            vocab_size: self.vocab_size.unwrap_or(tokenizer_vocab),
            hidden_size: size.width,
            intermediate_size: size.mlp,
            num_hidden_layers: size.depth,
            num_attention_heads: size.heads,
            max_position_embeddings: self.max_len.unwrap_or(64),
            hidden_act: gelu_tanh(),
            layer_norm_eps: ln_eps(),
            projection_size: Some(vision_width),
            pad_token_id: None,
            bos_token_id: None,
            eos_token_id: None,
            model_type: text_type(),
        })
    }
}

impl SiglipConfig {
    /// Builds the two-tower config from YAML specs.
    pub fn from_specs(
        vision: &TowerSpec,
        text: &TowerSpec,
        tokenizer_vocab: usize,
    ) -> Result<SiglipConfig> {
        let vision_config = vision.resolve()?;
        let text_config = text.resolve_text(tokenizer_vocab, vision_config.hidden_size)?;
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
        let v = TowerSpec {
            preset: Some("B/16".into()),
            ..Default::default()
        };
        let t = TowerSpec {
            preset: Some("B".into()),
            ..Default::default()
        };
        let cfg = SiglipConfig::from_specs(&v, &t, 32000).unwrap();
        assert_eq!(cfg.vision_config.grid(), 14);
        assert_eq!(cfg.text_config.projection(), 768);
        let bad = TowerSpec {
            preset: Some("B/16".into()),
            image_size: Some(8),
            ..Default::default()
        };
        let err = SiglipConfig::from_specs(&bad, &t, 10)
            .unwrap_err()
            .to_string();
        assert!(err.contains("image_size 8"), "{err}");
        let unknown = TowerSpec {
            preset: Some("Z".into()),
            ..Default::default()
        };
        assert!(unknown
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("model.vision.preset"));
    }

    #[test]
    fn each_tower_refuses_the_others_keys() {
        let text_key_on_vision = TowerSpec {
            preset: Some("mu".into()),
            max_len: Some(8),
            ..Default::default()
        };
        let e = text_key_on_vision.resolve().unwrap_err().to_string();
        assert!(e.contains("model.vision.max_len"), "{e}");
        let vision_key_on_text = TowerSpec {
            preset: Some("mu".into()),
            patch_size: Some(8),
            ..Default::default()
        };
        let e = vision_key_on_text
            .resolve_text(10, 32)
            .unwrap_err()
            .to_string();
        assert!(e.contains("model.text.patch_size"), "{e}");
    }
}
