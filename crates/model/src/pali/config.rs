//! A PaLI model folder's `config.json`: the image encoder (SigLIP's ViT), the T5/UL2 language
//! model, and PaLI's limits; and the named PaLI sizes.

use crate::error::{ModelError, Result};
use crate::folder::{read_json_config, write_json_config};
use crate::siglip::SiglipVisionConfig;
use crate::t5::T5Config;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Config of a PaLI model folder's `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaliConfig {
    /// The image encoder (SigLIP's ViT; the pooling head is not used).
    pub vision_config: SiglipVisionConfig,
    /// The encoder-decoder language model.
    pub text_config: T5Config,
    /// Most video frames per example.
    #[serde(default = "sixteen")]
    pub max_frames: usize,
    /// Longest prompt in tokens.
    #[serde(default = "max_text")]
    pub max_text_len: usize,
    /// Always `pali`.
    #[serde(default = "pali_type")]
    pub model_type: String,
}

fn sixteen() -> usize {
    16
}
fn max_text() -> usize {
    128
}
fn pali_type() -> String {
    "pali".into()
}

/// Named PaLI sizes: (ViT preset, image size, language-model preset).
pub const PRESETS: &[(&str, &str, usize, &str)] = &[
    ("mu", "mu", 32, "mu"),
    ("tiny", "tiny", 64, "tiny"),
    // A mid-sized PaLI for benchmarks: ViT-B/16 at 224 px and T5 v1.1 base.
    ("base", "B/16", 224, "t5-v1_1-base"),
    // PaLI-3 (Chen et al. 2023): SigLIP ViT-G/14 and a 3B UL2 encoder-decoder; stage 1 at 224 px.
    ("pali3", "G/14", 224, "ul2-3b"),
];

impl PaliConfig {
    /// A preset by name with the given vocabulary (e.g. mT5's 250,112 + 1,024 location tokens).
    pub fn preset(name: &str, vocab_size: usize) -> Result<PaliConfig> {
        let &(_, vit, size, lm) = PRESETS.iter().find(|p| p.0 == name).ok_or_else(|| {
            let names: Vec<&str> = PRESETS.iter().map(|p| p.0).collect();
            ModelError::Config(format!(
                "PaLI preset {name:?} is unknown; expected one of {}",
                names.join(", ")
            ))
        })?;
        let spec = crate::siglip::TowerSpec {
            preset: Some(vit.into()),
            image_size: Some(size),
            ..Default::default()
        };
        Ok(PaliConfig::new(
            spec.resolve()?,
            T5Config::preset(lm, vocab_size)?,
        ))
    }

    /// A PaLI of this image encoder (its pooling head dropped) and language model, with the
    /// default limits (16 frames, 128 prompt tokens).
    pub fn new(mut vision_config: SiglipVisionConfig, text_config: T5Config) -> PaliConfig {
        vision_config.vision_use_head = false;
        PaliConfig {
            vision_config,
            text_config,
            max_frames: sixteen(),
            max_text_len: max_text(),
            model_type: pali_type(),
        }
    }

    /// Reads `config.json`.
    pub fn load(path: &Path) -> Result<PaliConfig> {
        read_json_config(path, |cfg: &PaliConfig| {
            if cfg.model_type != "pali" {
                return Err(format!(
                    "model_type is {:?}, expected \"pali\"",
                    cfg.model_type
                ));
            }
            cfg.text_config
                .validate()
                .map_err(|e| format!("text_config: {e}"))
        })
    }

    /// Writes `config.json`.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_json_config(path, self)
    }

    /// Visual tokens per frame.
    pub fn tokens_per_frame(&self) -> usize {
        self.vision_config.grid() * self.vision_config.grid()
    }
}
