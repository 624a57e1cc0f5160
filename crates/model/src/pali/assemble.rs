//! PaLI models made from parts: a preset whose ViT comes from a SigLIP folder and whose
//! language model comes from a T5 folder; the same model at another resolution (224 → 812 →
//! 1064, position embeddings resampled); and its language model as a transformers T5 folder.

use super::{PaliConfig, PaliModel};
use crate::error::{ModelError, Result};
use crate::folder::{CONFIG_FILE, WEIGHTS_FILE};
use crate::siglip::vit::{resample_posemb, Resample};
use crate::siglip::{SiglipConfig, SiglipVisionConfig};
use crate::weights;
use std::path::Path;

/// What a new PaLI model starts from.
#[derive(Debug, Clone)]
pub struct PaliInit<'a> {
    /// Size preset: `mu`, `tiny` (tests) or `pali3` (SigLIP G/14 + UL2 3B).
    pub preset: &'a str,
    /// Vocabulary: the tokenizer's, location tokens included.
    pub vocab_size: usize,
    /// Image resolution (default: the preset's).
    pub image_size: Option<usize>,
    /// SigLIP model folder whose ViT (architecture and weights) becomes the image encoder; its
    /// text tower and pooling head are dropped.
    pub siglip: Option<&'a Path>,
    /// How SigLIP's position embeddings are resized to `image_size`.
    pub resample: Resample,
    /// T5 folder (`palisade import hf-t5`) initialising the language model.
    pub t5: Option<&'a Path>,
    /// Seed of the random initialisation of everything not loaded.
    pub seed: i64,
}

/// The position-embedding tensor, the one whose shape follows the resolution.
pub(super) const POSEMB: &str = "vision_model.embeddings.position_embedding.weight";

fn check_patches(v: &SiglipVisionConfig) -> Result<()> {
    if v.patch_size == 0 || !v.image_size.is_multiple_of(v.patch_size) {
        return Err(ModelError::Config(format!(
            "image size {} is not a multiple of the patch size {}",
            v.image_size, v.patch_size
        )));
    }
    Ok(())
}

impl PaliModel {
    /// A new PaLI model on the CPU as `init` describes.
    pub fn assemble(init: &PaliInit) -> Result<PaliModel> {
        let mut cfg = PaliConfig::preset(init.preset, init.vocab_size)?;
        if let Some(dir) = init.siglip {
            // The image encoder's architecture is the SigLIP model's; the preset sizes the rest.
            let s = SiglipConfig::load(&dir.join(CONFIG_FILE))?;
            cfg.vision_config = SiglipVisionConfig {
                vision_use_head: false,
                ..s.vision_config
            };
        }
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
            model.load_language_model_from(dir)?;
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
    /// folder (`config.json` + `model.safetensors`).
    pub fn save_language_model(&self, dir: &Path) -> Result<()> {
        self.config().text_config.save(&dir.join(CONFIG_FILE))?;
        weights::write_atomic(&self.language_model_tensors(), &dir.join(WEIGHTS_FILE))
    }
}
