//! Stage 0: SigLIP's image and text towers trained on image-text pairs with the sigmoid loss,
//! evaluated by retrieval and zero-shot classification on `data.eval`.

use super::{eval_setup, StageKind, StageModel};
use crate::accumulate::{backward_embedding_loss, slice, StepPlan};
use crate::config::ExperimentConfig;
use crate::error::{Result, TrainerError};
use crate::parallel::{self, Mesh};
use palisade_data::{Batch, InputSize, Prefetch, RankShare, Split, TextTokenizer, TrainSource};
use palisade_evaluator::inputs::pixels_and_ids;
use palisade_evaluator::runs::siglip::evaluate_held_out;
use palisade_evaluator::EvalReport;
use palisade_model::{SiglipConfig, SiglipModel};
use std::path::Path;
use std::sync::Arc;
use tch::{nn, Device, Tensor};

/// The SigLIP stage kind.
pub struct Siglip;

/// The model config the experiment describes, with the tokenizer's vocabulary unless set.
pub fn model_config(cfg: &ExperimentConfig, vocab: usize) -> Result<SiglipConfig> {
    let text = cfg.model.text.as_ref().ok_or_else(|| {
        TrainerError::Config("key model.text: the SigLIP text tower is not configured".into())
    })?;
    Ok(SiglipConfig::from_specs(&cfg.model.vision, text, vocab)?)
}

/// The model `cfg` describes on `device`: from `model.init` when set, else freshly initialised
/// from the seed.
pub fn build_model(
    cfg: &ExperimentConfig,
    mcfg: &SiglipConfig,
    device: Device,
) -> Result<SiglipModel> {
    tch::manual_seed(cfg.seed as i64);
    match &cfg.model.init {
        Some(dir) => {
            let m = SiglipModel::load(dir, device)?;
            if m.config() != mcfg {
                return Err(TrainerError::Config(format!(
                    "key model.init: {} holds a model whose config differs from the experiment's model section",
                    dir.display()
                )));
            }
            Ok(m)
        }
        None => Ok(SiglipModel::new(mcfg, device)?),
    }
}

impl StageKind for Siglip {
    fn name(&self) -> &'static str {
        "siglip"
    }

    fn validate(&self, cfg: &ExperimentConfig) -> std::result::Result<(), String> {
        if cfg.model.text.is_none() {
            return Err("key model.text: stage siglip needs the text tower".into());
        }
        if cfg.model.vision.preset.is_none() {
            return Err(
                "key model.vision.preset: stage siglip needs the image tower's size".into(),
            );
        }
        cfg.data.validate_pairs()?;
        if !cfg.eval.tasks.is_empty() {
            return Err(
                "key eval.tasks: PaLI benchmarks need stage pali (SigLIP is evaluated on data.eval)"
                    .into(),
            );
        }
        if cfg.parallel.tp > 1 {
            let m = model_config(cfg, 1).map_err(|e| e.to_string())?;
            let (v, t) = (&m.vision_config, &m.text_config);
            let text = [
                ("model.text num_attention_heads", t.num_attention_heads),
                ("model.text intermediate_size", t.intermediate_size),
            ];
            let mut dims = [&crate::parallel::vision_tp_dims(v)[..], &text].concat();
            if cfg.parallel.sequence_parallel {
                dims.extend([
                    crate::parallel::vision_tokens(v),
                    (
                        "model.text max_len (the text tower's tokens)",
                        t.max_position_embeddings,
                    ),
                ]);
            }
            crate::parallel::check_tp_dims(cfg.parallel.tp, &dims)?;
        }
        Ok(())
    }

    fn eval_key(&self) -> &'static str {
        "data.eval"
    }

    fn start_from(
        &self,
        cfg: &mut ExperimentConfig,
        previous: &str,
        dir: &Path,
    ) -> std::result::Result<(), String> {
        if previous != self.name() {
            return Err(format!(
                "a siglip stage cannot start from a {previous} stage (name another with `from:`)"
            ));
        }
        cfg.model.init.get_or_insert_with(|| dir.to_path_buf());
        Ok(())
    }

    fn ensure_synth_data(&self, cfg: &ExperimentConfig) -> Result<()> {
        let Some(s) = &cfg.data.synth else {
            return Ok(());
        };
        let train = cfg.data.train.as_deref().ok_or_else(|| {
            TrainerError::Config(
                "key data.synth: needs data.train to train the tokenizer on".into(),
            )
        })?;
        Ok(s.ensure_pairs(cfg.seed, train, &cfg.data.tokenizer)?)
    }

    fn shape(&self, cfg: &ExperimentConfig) -> Result<crate::plan::Shape> {
        let set = cfg.model.text.as_ref().and_then(|t| t.vocab_size);
        let vocab = super::planned_vocab(cfg, set, "model.text.vocab_size", false)?;
        Ok(crate::plan::shape::siglip(&model_config(cfg, vocab)?))
    }

    fn build(&self, cfg: &ExperimentConfig, device: Device) -> Result<Box<dyn StageModel>> {
        let tok = Arc::new(cfg.data.load_tokenizer()?);
        let mcfg = model_config(cfg, tok.vocab_size())?;
        if mcfg.text_config.vocab_size < tok.vocab_size() {
            return Err(TrainerError::Config(format!(
                "key model.text.vocab_size: {} rows, but {} gives {} ids",
                mcfg.text_config.vocab_size,
                cfg.data.tokenizer.display(),
                tok.vocab_size()
            )));
        }
        let model = build_model(cfg, &mcfg, device)?;
        Ok(Box::new(SiglipStage { model, tok }))
    }

    fn load(
        &self,
        cfg: &ExperimentConfig,
        dir: &Path,
        device: Device,
    ) -> Result<Box<dyn StageModel>> {
        let model = SiglipModel::load(dir, device)?;
        let tok = Arc::new(cfg.data.load_tokenizer()?);
        Ok(Box::new(SiglipStage { model, tok }))
    }
}

/// A SigLIP model and the tokenizer of its texts.
struct SiglipStage {
    model: SiglipModel,
    tok: Arc<TextTokenizer>,
}

impl StageModel for SiglipStage {
    fn vs(&self) -> &nn::VarStore {
        &self.model.vs
    }

    fn units(&self) -> Vec<palisade_model::param_hook::Unit> {
        self.model.units()
    }

    fn train_source(
        &self,
        cfg: &ExperimentConfig,
        share: RankShare,
    ) -> Result<Box<dyn TrainSource>> {
        let c = self.model.config();
        let loader = cfg.data.pairs(
            Split::Train,
            &self.tok,
            InputSize {
                image_size: c.vision_config.image_size,
                text_len: c.text_config.max_position_embeddings,
            },
            cfg.seed,
            Vec::new(),
            share,
        )?;
        Ok(Box::new(Prefetch::new(loader, cfg.data.prefetch)))
    }

    fn backward(&self, batch: &Batch, mesh: &Mesh, plan: StepPlan) -> Result<f64> {
        let micro = plan.micro;
        let m = &self.model;
        let device = m.vs.device();
        let (pixels, ids) = pixels_and_ids(batch, device);
        let embed = |k: usize| -> Result<(Tensor, Tensor)> {
            let (p, i) = (slice(&pixels, k, micro), slice(&ids, k, micro));
            Ok(palisade_model::autocast::bf16(plan.autocast, || {
                Ok::<_, palisade_model::ModelError>((m.embed_images(&p)?, m.embed_texts(&i)?))
            })?)
        };
        backward_embedding_loss(plan, embed, |zimg, ztxt| {
            Ok(parallel::sigmoid_loss(
                mesh,
                zimg,
                ztxt,
                &m.logit_scale,
                &m.logit_bias,
            )?)
        })
    }

    fn scalars(&self) -> Vec<(String, f64)> {
        let m = &self.model;
        vec![
            (
                "train/temperature".into(),
                m.logit_scale.exp().double_value(&[0]),
            ),
            ("train/bias".into(), m.logit_bias.double_value(&[0])),
        ]
    }

    fn save(&self, dir: &Path) -> Result<()> {
        Ok(self.model.save(dir)?)
    }

    fn evaluate(
        &self,
        cfg: &ExperimentConfig,
        mesh: &Mesh,
        step: Option<u64>,
        _report_dir: Option<&Path>,
    ) -> Result<Option<EvalReport>> {
        Ok(evaluate_held_out(
            &self.model,
            &self.tok,
            &eval_setup(cfg),
            mesh.dp(),
            step,
        )?)
    }
}
