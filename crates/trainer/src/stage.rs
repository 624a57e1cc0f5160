//! What the training loop needs from a stage's model — variables, a loss on a batch, extra
//! scalars to log, saving — for SigLIP (stage 0) and PaLI (stages 1, 2, transfer) alike.

use crate::config::{ExperimentConfig, Stage};
use crate::error::{Result, TrainerError};
use crate::setup;
use palisade_data::{Batch, TextTokenizer};
use palisade_evaluator::siglip_eval::batch_tensors;
use palisade_model::pali::{PaliConfig, PaliModel};
use palisade_model::vit::Resample;
use palisade_model::SiglipModel;
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};

/// The model being trained.
pub enum StageModel {
    /// SigLIP's two towers.
    Siglip(Box<SiglipModel>),
    /// PaLI, with its loss settings.
    Pali {
        /// The model.
        model: Box<PaliModel>,
        /// Label smoothing of the token cross-entropy.
        label_smoothing: f64,
        /// Tokenizer saved beside the weights (with location tokens).
        tokenizer: Box<TextTokenizer>,
    },
}

impl StageModel {
    /// Builds (or loads) the stage's model on `device`, seeded from the config.
    pub fn build(
        cfg: &ExperimentConfig,
        tok: &TextTokenizer,
        device: Device,
    ) -> Result<StageModel> {
        match cfg.stage {
            Stage::Siglip => {
                let mcfg = setup::model_config(cfg, tok.vocab_size())?;
                Ok(StageModel::Siglip(Box::new(setup::build_model(
                    cfg, &mcfg, device,
                )?)))
            }
            Stage::Pali => {
                let pcfg = pali_config(cfg, tok.vocab_size())?;
                tch::manual_seed(cfg.seed as i64);
                let model = match &cfg.model.init {
                    Some(dir) => {
                        let m = PaliModel::load(dir, device)?;
                        if m.config() != &pcfg {
                            return Err(TrainerError::Config(format!(
                                "key model.init: {} holds a PaLI model whose config differs from the experiment's",
                                dir.display()
                            )));
                        }
                        m
                    }
                    None => PaliModel::new(&pcfg, device)?,
                };
                if let Some(dir) = &cfg.model.init_vision {
                    model.load_vision_from(dir, Resample::Bilinear)?;
                }
                if let Some(dir) = &cfg.model.init_language {
                    model.load_language_model_from(dir)?;
                }
                model.freeze_vision(cfg.train.freeze_vision);
                Ok(StageModel::Pali {
                    model: Box::new(model),
                    label_smoothing: cfg.train.label_smoothing,
                    tokenizer: Box::new(tok.clone()),
                })
            }
        }
    }

    /// The variables (trainable ones require gradients).
    pub fn vs(&self) -> &nn::VarStore {
        match self {
            StageModel::Siglip(m) => &m.vs,
            StageModel::Pali { model, .. } => &model.vs,
        }
    }

    /// The loss of one (per-rank) batch, under bf16 autocast on CUDA.
    pub fn loss(&self, b: &Batch, device: Device) -> Result<Tensor> {
        let (pixels, ids) = batch_tensors(b, device);
        let cuda = device.is_cuda();
        match self {
            StageModel::Siglip(m) => Ok(palisade_model::autocast::bf16(cuda, || {
                m.loss(&pixels, &ids)
            })?),
            StageModel::Pali {
                model,
                label_smoothing,
                tokenizer,
            } => {
                let pad = tokenizer.pad_id();
                let mask = ids.ne(pad).to_kind(Kind::Int64);
                let labels = Tensor::from_slice(&b.target_ids)
                    .view([b.size as i64, b.target_len as i64])
                    .to_device(device);
                Ok(palisade_model::autocast::bf16(cuda, || {
                    model.loss(&pixels, &ids, &mask, &labels, *label_smoothing)
                })?)
            }
        }
    }

    /// Stage-specific scalars to log (SigLIP's temperature and bias).
    pub fn scalars(&self) -> Vec<(String, f64)> {
        match self {
            StageModel::Siglip(m) => vec![
                (
                    "train/temperature".into(),
                    m.logit_scale.exp().double_value(&[0]),
                ),
                ("train/bias".into(), m.logit_bias.double_value(&[0])),
            ],
            StageModel::Pali { .. } => Vec::new(),
        }
    }

    /// Writes the model folder files into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        match self {
            StageModel::Siglip(m) => Ok(m.save(dir)?),
            StageModel::Pali {
                model, tokenizer, ..
            } => {
                model.save(dir)?;
                Ok(tokenizer.save(&dir.join("tokenizer.json"))?)
            }
        }
    }

    /// The SigLIP model, for the stage-0 evaluations.
    pub fn siglip(&self) -> Option<&SiglipModel> {
        match self {
            StageModel::Siglip(m) => Some(m),
            StageModel::Pali { .. } => None,
        }
    }
}

/// The PaLI config the experiment describes: `model.vision` (ViT) and `model.language` (T5/UL2),
/// with the vocabulary of the tokenizer.
pub fn pali_config(cfg: &ExperimentConfig, vocab: usize) -> Result<PaliConfig> {
    let lang = cfg
        .model
        .language
        .as_ref()
        .ok_or_else(|| TrainerError::Config("key model.language: not configured".into()))?;
    let mut pcfg = PaliConfig::new(cfg.model.vision.resolve()?, lang.resolve(vocab)?);
    pcfg.max_text_len = pcfg.max_text_len.max(cfg.data.text_len);
    Ok(pcfg)
}
