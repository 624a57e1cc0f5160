//! PaLI models made from parts: the image encoder from a SigLIP folder (a `SiglipModel` or a
//! vision-only `SiglipVisionModel`, hub-shaped or palisade's) and the language model from a T5
//! folder, each architecture taken from its folder, the rest from a preset; the same model at
//! another resolution (224 → 812 → 1064, position embeddings resampled); and its parts exported
//! as transformers folders.

use super::{PaliConfig, PaliModel};
use crate::error::{ModelError, Result};
use crate::folder::CONFIG_FILE;
use crate::siglip::vit::{resample_posemb, Resample};
use crate::siglip::SiglipVisionConfig;
use crate::t5::T5Config;
use crate::weights;
use std::path::Path;

/// What a new PaLI model starts from.
#[derive(Debug, Clone)]
pub struct PaliInit<'a> {
    /// Size preset for the parts not taken from folders: `mu`, `tiny` (tests) or `pali3`
    /// (SigLIP G/14 + UL2 3B); needed unless both `siglip` and `t5` are given.
    pub preset: Option<&'a str>,
    /// Vocabulary: the tokenizer's, location tokens included.
    pub vocab_size: usize,
    /// Image resolution (default: the SigLIP's, else the preset's).
    pub image_size: Option<usize>,
    /// SigLIP model folder whose ViT (architecture and weights) becomes the image encoder; its
    /// text tower and pooling head are dropped.
    pub siglip: Option<&'a Path>,
    /// How SigLIP's position embeddings are resized to `image_size`.
    pub resample: Resample,
    /// T5 folder (hub-shaped, or `palisade import hf-t5`) whose architecture and weights become
    /// the language model.
    pub t5: Option<&'a Path>,
    /// Rows of the T5's embedding that belong to its tokenizer's pieces; rows at and beyond it
    /// (padding, and the vocabulary's growth) start afresh (default: every pretrained row).
    pub pretrained_vocab: Option<usize>,
    /// Seed of the random initialisation of everything not loaded.
    pub seed: i64,
}

/// The position-embedding tensor, the one whose shape follows the resolution.
pub(super) const POSEMB: &str = "vision_model.embeddings.position_embedding.weight";

fn check_patches(v: &SiglipVisionConfig) -> Result<()> {
    v.validate().map_err(ModelError::Config)
}

impl PaliModel {
    /// A new PaLI model on the CPU as `init` describes.
    pub fn assemble(init: &PaliInit) -> Result<PaliModel> {
        let preset = |part: &str| {
            let name = init.preset.ok_or_else(|| {
                ModelError::Config(format!(
                    "the {part} comes from no folder, so a preset must size it"
                ))
            })?;
            PaliConfig::preset(name, init.vocab_size)
        };
        let vision = match init.siglip {
            // The image encoder's architecture is the SigLIP model's.
            Some(dir) => SiglipVisionConfig {
                vision_use_head: false,
                ..SiglipVisionConfig::of_folder(dir)?
            },
            None => preset("image encoder")?.vision_config,
        };
        let language = match init.t5 {
            Some(dir) => T5Config {
                vocab_size: init.vocab_size,
                ..T5Config::load(&dir.join(CONFIG_FILE))?
            },
            None => preset("language model")?.text_config,
        };
        let mut cfg = PaliConfig::new(vision, language);
        if let Some(s) = init.image_size {
            cfg.vision_config.image_size = s;
        }
        check_patches(&cfg.vision_config)?;
        tch::manual_seed(init.seed);
        let model = PaliModel::new(&cfg, tch::Device::Cpu)?;
        if let Some(dir) = init.siglip {
            model.load_vision_from(dir, init.resample)?;
        }
        if let Some(dir) = init.t5 {
            model.load_language_model_from(dir, init.pretrained_vocab)?;
        }
        Ok(model)
    }

    /// The same model at `image_size` pixels, position embeddings resampled by `resample`.
    pub fn resized(&self, image_size: usize, resample: Resample) -> Result<PaliModel> {
        let mut cfg = self.config().clone();
        cfg.vision_config.image_size = image_size;
        check_patches(&cfg.vision_config)?;
        let new = PaliModel::new(&cfg, tch::Device::Cpu)?;
        let grid = cfg.vision_config.grid() as i64;
        let tensors = weights::named_cpu(&self.vs)
            .into_iter()
            .map(|(n, t)| match n.as_str() {
                POSEMB => resample_posemb(&t, grid, resample).map(|t| (n, t)),
                _ => Ok((n, t)),
            })
            .collect::<Result<Vec<_>>>()?;
        weights::load_tensors_into(&new.vs, tensors, Path::new("<resized model>"))?;
        Ok(new)
    }

    /// Writes the language model into `dir` as a transformers `T5ForConditionalGeneration`
    /// folder (`config.json` + weights, in shards of at most `max_shard_bytes`).
    pub fn save_language_model(&self, dir: &Path, max_shard_bytes: u64) -> Result<()> {
        self.config().text_config.save(&dir.join(CONFIG_FILE))?;
        weights::save_sharded(&self.language_model_tensors(), dir, max_shard_bytes)?;
        Ok(())
    }

    /// Writes the image encoder into `dir` as a transformers `SiglipVisionModel` folder.
    pub fn save_vision_model(&self, dir: &Path, max_shard_bytes: u64) -> Result<()> {
        self.config().vision_config.save(&dir.join(CONFIG_FILE))?;
        let tensors = weights::select_prefix(
            weights::named_cpu(&self.vs),
            "vision_model.",
            "vision_model.",
        );
        weights::save_sharded(&tensors, dir, max_shard_bytes)?;
        Ok(())
    }

    /// Writes the projector's `weight` and `bias` to the safetensors file `path`.
    pub fn save_projector(&self, path: &Path) -> Result<()> {
        let tensors = weights::select_prefix(
            weights::named_cpu(&self.vs),
            "multi_modal_projector.",
            "multi_modal_projector.",
        );
        weights::write_atomic(&tensors, path)
    }
}
