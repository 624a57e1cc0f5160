//! The SigLIP two-tower model: image and text towers, L2-normalised embeddings, a learnable
//! temperature t' (init log 10) and bias b (init −10). Names follow transformers' `SiglipModel`.

pub mod config;
mod layers;
pub mod loss;
mod pooling;
pub mod presets;
pub mod spec;
pub mod text;
pub mod vit;

pub use config::{SiglipConfig, SiglipTextConfig, SiglipVisionConfig};
pub use loss::{sigmoid_logits, sigmoid_loss};
pub use spec::{TextSpec, TowerSpec, VisionSpec};

use crate::error::Result;
use crate::folder::{CONFIG_FILE, WEIGHTS_FILE};
use crate::weights;
use std::path::Path;
use tch::nn::{self, Init};
use tch::{Device, Kind, Tensor};
use text::TextTransformer;
use vit::VisionTransformer;

/// Embeddings and logits of one forward pass.
#[derive(Debug)]
pub struct SiglipOutput {
    /// L2-normalised image embeddings [B, D].
    pub image_embeds: Option<Tensor>,
    /// L2-normalised text embeddings [C, D].
    pub text_embeds: Option<Tensor>,
    /// `exp(t')·img·txtᵀ + b`, [B, C], when both inputs are given.
    pub logits_per_image: Option<Tensor>,
}

/// The two-tower model and the variables it owns.
#[derive(Debug)]
pub struct SiglipModel {
    /// All parameters, named as in transformers.
    pub vs: nn::VarStore,
    /// Image tower (`vision_model.*`).
    pub vision: VisionTransformer,
    /// Text tower (`text_model.*`).
    pub text: TextTransformer,
    /// Log temperature t'.
    pub logit_scale: Tensor,
    /// Bias b.
    pub logit_bias: Tensor,
    cfg: SiglipConfig,
}

impl SiglipModel {
    /// Every tower block's variables (for `parallel.shard: full`).
    pub fn units(&self) -> Vec<crate::param_hook::Unit> {
        [self.vision.units(), self.text.units()].concat()
    }
    /// A freshly initialised model (seed libtorch first for reproducible weights).
    pub fn new(cfg: &SiglipConfig, device: Device) -> Result<SiglipModel> {
        cfg.validate().map_err(crate::ModelError::Config)?;
        let vs = nn::VarStore::new(device);
        let (vision, text, logit_scale, logit_bias) = {
            let root = vs.root();
            (
                VisionTransformer::new(&root / "vision_model", &cfg.vision_config),
                TextTransformer::new(&root / "text_model", &cfg.text_config),
                root.var("logit_scale", &[1], Init::Const(10f64.ln())),
                root.var("logit_bias", &[1], Init::Const(-10.0)),
            )
        };
        Ok(SiglipModel {
            vs,
            vision,
            text,
            logit_scale,
            logit_bias,
            cfg: cfg.clone(),
        })
    }

    /// Loads a model folder (`config.json` + `model.safetensors`), ours or transformers'.
    pub fn load(dir: &Path, device: Device) -> Result<SiglipModel> {
        let cfg = SiglipConfig::load(&dir.join(CONFIG_FILE))?;
        let model = SiglipModel::new(&cfg, device)?;
        weights::load_dir(&model.vs, dir)?;
        Ok(model)
    }

    /// Writes `config.json` and `model.safetensors` into `dir` (which must exist).
    pub fn save(&self, dir: &Path) -> Result<()> {
        self.cfg.save(&dir.join(CONFIG_FILE))?;
        weights::save(&self.vs, &dir.join(WEIGHTS_FILE))
    }

    /// The model's config.
    pub fn config(&self) -> &SiglipConfig {
        &self.cfg
    }

    /// L2-normalised image embeddings of `pixel_values` [B, 3, S, S].
    pub fn embed_images(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let out = self.vision.forward(pixel_values)?;
        let pooled = out.pooled.ok_or_else(|| {
            crate::ModelError::Config(
                "vision_config.vision_use_head is false: SigLIP needs the MAP head".into(),
            )
        })?;
        Ok(l2_normalize(&pooled))
    }

    /// L2-normalised text embeddings of `input_ids` [C, L].
    pub fn embed_texts(&self, input_ids: &Tensor) -> Result<Tensor> {
        Ok(l2_normalize(&self.text.forward(input_ids)?))
    }

    /// Embeds whichever inputs are given; logits when both are.
    pub fn forward(
        &self,
        pixel_values: Option<&Tensor>,
        input_ids: Option<&Tensor>,
    ) -> Result<SiglipOutput> {
        let image_embeds = pixel_values.map(|p| self.embed_images(p)).transpose()?;
        let text_embeds = input_ids.map(|t| self.embed_texts(t)).transpose()?;
        let logits_per_image = match (&image_embeds, &text_embeds) {
            (Some(i), Some(t)) => Some(self.logits(i, t)),
            _ => None,
        };
        Ok(SiglipOutput {
            image_embeds,
            text_embeds,
            logits_per_image,
        })
    }

    /// Logits between normalised embeddings.
    pub fn logits(&self, image_embeds: &Tensor, text_embeds: &Tensor) -> Tensor {
        sigmoid_logits(
            image_embeds,
            text_embeds,
            &self.logit_scale,
            &self.logit_bias,
        )
    }

    /// The sigmoid loss of a batch of matching pairs.
    pub fn loss(&self, pixel_values: &Tensor, input_ids: &Tensor) -> Result<Tensor> {
        let zimg = self.embed_images(pixel_values)?;
        let ztxt = self.embed_texts(input_ids)?;
        Ok(sigmoid_loss(
            &zimg,
            &ztxt,
            &self.logit_scale,
            &self.logit_bias,
        ))
    }
}

/// A vision-only model folder (transformers' `SiglipVisionModel`): the image tower alone, with
/// or without its pooling head.
#[derive(Debug)]
pub struct SiglipVision {
    /// All parameters (`vision_model.*`).
    pub vs: nn::VarStore,
    /// The tower.
    pub tower: VisionTransformer,
    cfg: SiglipVisionConfig,
}

impl SiglipVision {
    /// A freshly initialised tower.
    pub fn new(cfg: &SiglipVisionConfig, device: Device) -> Result<SiglipVision> {
        cfg.validate().map_err(crate::ModelError::Config)?;
        let vs = nn::VarStore::new(device);
        let tower = VisionTransformer::new(&vs.root() / "vision_model", cfg);
        Ok(SiglipVision {
            vs,
            tower,
            cfg: cfg.clone(),
        })
    }

    /// Loads a `SiglipVisionModel` folder (ours or transformers').
    pub fn load(dir: &Path, device: Device) -> Result<SiglipVision> {
        let cfg = SiglipVisionConfig::load(&dir.join(CONFIG_FILE))?;
        let m = SiglipVision::new(&cfg, device)?;
        weights::load_dir(&m.vs, dir)?;
        Ok(m)
    }

    /// Writes `config.json` and `model.safetensors` into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        self.cfg.save(&dir.join(CONFIG_FILE))?;
        weights::save(&self.vs, &dir.join(WEIGHTS_FILE))
    }

    /// The tower's config.
    pub fn config(&self) -> &SiglipVisionConfig {
        &self.cfg
    }
}

/// `x / ‖x‖₂` along the last dimension.
pub fn l2_normalize(x: &Tensor) -> Tensor {
    let x = x.to_kind(Kind::Float);
    let norm = x.norm_scalaropt_dim(2.0, [-1i64].as_slice(), true);
    x / norm
}
