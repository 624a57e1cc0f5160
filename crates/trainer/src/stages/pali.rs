//! PaLI stages (1: task mixture with the ViT frozen; 2: higher resolution, everything trained;
//! transfer: one task, ViT frozen): the ViT's tokens into a T5/UL2 encoder-decoder trained on a
//! weighted task mixture with token cross-entropy, evaluated on `eval.tasks`.

use super::{eval_setup, StageKind, StageModel};
use crate::accumulate::{backward_item_mean, slice, StepPlan};
use crate::config::ExperimentConfig;
use crate::error::{Result, TrainerError};
use crate::parallel::Mesh;
use palisade_data::{Batch, Prefetch, RankShare, TextTokenizer, TrainSource};
use palisade_evaluator::inputs::PaliInputs;
use palisade_evaluator::runs::pali::evaluate_tasks;
use palisade_evaluator::EvalReport;
use palisade_model::folder::TOKENIZER_FILE;
use palisade_model::pali::{PaliConfig, PaliModel};
use palisade_model::siglip::vit::Resample;
use palisade_model::t5::T5Config;
use palisade_model::weights;
use palisade_model::SiglipVisionConfig;
use std::path::Path;
use std::sync::Arc;
use tch::{nn, Device, Kind, Tensor};

/// The PaLI stage kind.
pub struct Pali;

/// The PaLI config the experiment describes, with the vocabulary of the tokenizer: the ViT of
/// `model.vision`'s preset, else of the `model.init_vision` folder (at `model.vision.image_size`
/// when set); the language model of `model.language`, else of the `model.init_language` folder.
fn pali_config(cfg: &ExperimentConfig, vocab: usize) -> Result<PaliConfig> {
    let m = &cfg.model;
    let vision = match (&m.vision.preset, &m.init_vision) {
        (None, Some(dir)) => SiglipVisionConfig {
            image_size: m
                .vision
                .image_size
                .unwrap_or(SiglipVisionConfig::of_folder(dir)?.image_size),
            ..SiglipVisionConfig::of_folder(dir)?
        },
        _ => m.vision.resolve()?,
    };
    let language = match (&m.language, &m.init_language) {
        (Some(spec), _) => spec.resolve(vocab)?,
        (None, Some(dir)) => T5Config {
            vocab_size: vocab,
            ..T5Config::load(&dir.join(palisade_model::folder::CONFIG_FILE))?
        },
        (None, None) => {
            return Err(TrainerError::Config(
                "key model.language: not configured (nor model.init_language)".into(),
            ))
        }
    };
    let mut pcfg = PaliConfig::new(vision, language);
    pcfg.max_text_len = pcfg.max_text_len.max(cfg.data.text_len);
    Ok(pcfg)
}

impl StageKind for Pali {
    fn name(&self) -> &'static str {
        "pali"
    }

    fn validate(&self, cfg: &ExperimentConfig) -> std::result::Result<(), String> {
        // A model that cannot be described yet (its init folder comes from an earlier stage)
        // is checked when built: tensor parallelism then names the tensor it cannot split.
        let described = (cfg.parallel.tp > 1)
            .then(|| pali_config(cfg, 1).ok())
            .flatten();
        if let Some(m) = described {
            let mut dims = crate::parallel::pali_tp_dims(&m);
            if cfg.parallel.sequence_parallel {
                dims.push(crate::parallel::vision_tokens(&m.vision_config));
            }
            crate::parallel::check_tp_dims(cfg.parallel.tp, &dims)?;
        }
        if cfg.model.language.is_none() && cfg.model.init_language.is_none() {
            return Err(
                "key model.language: stage pali needs the language model (or model.init_language)"
                    .into(),
            );
        }
        if cfg.model.vision.preset.is_none() && cfg.model.init_vision.is_none() {
            return Err(
                "key model.vision.preset: stage pali needs the image encoder's size (or model.init_vision)"
                    .into(),
            );
        }
        cfg.data.validate_mixture()
    }

    fn eval_key(&self) -> &'static str {
        "eval.tasks"
    }

    fn start_from(
        &self,
        cfg: &mut ExperimentConfig,
        previous: &str,
        dir: &Path,
    ) -> std::result::Result<(), String> {
        let m = &mut cfg.model;
        if m.init.is_some() || m.init_vision.is_some() {
            return Ok(());
        }
        match previous {
            // Stage 0 → 1: the SigLIP's ViT, its text tower dropped.
            "siglip" => m.init_vision = Some(dir.to_path_buf()),
            // Stage 1 → 2 → transfer: the whole PaLI, resampled when the resolution changes.
            "pali" => m.init = Some(dir.to_path_buf()),
            other => return Err(format!("a pali stage cannot start from a {other} stage")),
        }
        Ok(())
    }

    fn ensure_synth_data(&self, cfg: &ExperimentConfig) -> Result<()> {
        match &cfg.data.synth {
            Some(s) => Ok(s.ensure_tasks(cfg.seed, &cfg.data.tokenizer)?),
            None => Ok(()),
        }
    }

    fn shape(&self, cfg: &ExperimentConfig) -> Result<crate::plan::Shape> {
        let set = cfg.model.language.as_ref().and_then(|l| l.vocab_size);
        let vocab = super::planned_vocab(cfg, set, "model.language.vocab_size", true)?;
        let pcfg = pali_config(cfg, vocab)?;
        let frames = cfg
            .data
            .mixture
            .values()
            .filter_map(|m| m.frames)
            .max()
            .unwrap_or(1);
        Ok(crate::plan::shape::pali(
            &pcfg,
            frames,
            cfg.data.text_len,
            cfg.data.target_len,
            cfg.train.freeze_vision,
        ))
    }

    fn build(&self, cfg: &ExperimentConfig, device: Device) -> Result<Box<dyn StageModel>> {
        // PaLI reads and writes boxes as location tokens, each a new id.
        let base = cfg.data.load_tokenizer()?;
        let pretrained_vocab = base.vocab_size();
        let tok = Arc::new(base.with_loc_tokens());
        let pcfg = pali_config(cfg, tok.vocab_size())?;
        tch::manual_seed(cfg.seed as i64);
        let model = match &cfg.model.init {
            Some(dir) => {
                let m = load_at_resolution(dir, &pcfg, device)?;
                let rows = m.config().text_config.vocab_size;
                if rows < tok.vocab_size() {
                    return Err(TrainerError::Config(format!(
                        "key data.tokenizer: {} gives {} ids (location tokens included) but the language model in {} has {rows} rows",
                        cfg.data.tokenizer.display(),
                        tok.vocab_size(),
                        dir.display()
                    )));
                }
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
            model.load_language_model_from(dir, Some(pretrained_vocab))?;
        }
        model.freeze_vision(cfg.train.freeze_vision);
        Ok(Box::new(PaliStage {
            model,
            tok,
            label_smoothing: cfg.train.label_smoothing,
        }))
    }

    fn load(
        &self,
        cfg: &ExperimentConfig,
        dir: &Path,
        device: Device,
    ) -> Result<Box<dyn StageModel>> {
        let model = PaliModel::load(dir, device)?;
        // The checkpoint's tokenizer (with location tokens) is the one the model learnt.
        let tok_file = dir.join(TOKENIZER_FILE);
        let tok = TextTokenizer::load(&tok_file).map_err(|e| {
            TrainerError::Config(format!(
                "{}: the PaLI checkpoint's tokenizer: {e}",
                tok_file.display()
            ))
        })?;
        Ok(Box::new(PaliStage {
            model,
            tok: Arc::new(tok),
            label_smoothing: cfg.train.label_smoothing,
        }))
    }
}

/// A PaLI model, its tokenizer (saved beside the weights) and its loss settings.
struct PaliStage {
    model: PaliModel,
    tok: Arc<TextTokenizer>,
    label_smoothing: f64,
}

impl StageModel for PaliStage {
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
        let image_size = self.model.config().vision_config.image_size;
        let mixture = cfg.data.mixture(&self.tok, image_size, cfg.seed, share)?;
        Ok(Box::new(Prefetch::new(mixture, cfg.data.prefetch)))
    }

    fn backward(&self, batch: &Batch, mesh: &Mesh, plan: StepPlan) -> Result<f64> {
        let micro = plan.micro;
        let device = self.model.vs.device();
        let x = PaliInputs::new(batch, self.tok.pad_id(), device);
        // The loss is a mean over target tokens: each micro-batch counts by its tokens.
        let counts: Vec<f64> = (0..micro)
            .map(|k| {
                slice(&x.labels, k, micro)
                    .ne(-100)
                    .sum(Kind::Float)
                    .double_value(&[])
            })
            .collect();
        // The mean is over the global batch's tokens: each rank weighs its own by their share
        // of them, so that uneven caption lengths across ranks average as one process would.
        let mut share = Tensor::from_slice(&[counts.iter().sum::<f64>()]);
        mesh.dp()
            .all_reduce(&mut share, palisade_sharding::ReduceOp::Avg)?;
        let share = share.double_value(&[0]);
        backward_item_mean(&counts, share, plan.remat, |k| {
            let part = |t: &Tensor| slice(t, k, micro);
            Ok(palisade_model::autocast::bf16(plan.autocast, || {
                self.model.loss(
                    &part(&x.pixels),
                    &part(&x.ids),
                    &part(&x.mask),
                    &part(&x.labels),
                    self.label_smoothing,
                )
            })?)
        })
    }

    fn scalars(&self) -> Vec<(String, f64)> {
        Vec::new()
    }

    fn save(&self, dir: &Path) -> Result<()> {
        self.model.save(dir)?;
        Ok(self.tok.save(&dir.join(TOKENIZER_FILE))?)
    }

    fn evaluate(
        &self,
        cfg: &ExperimentConfig,
        mesh: &Mesh,
        step: Option<u64>,
        report_dir: Option<&Path>,
    ) -> Result<Option<EvalReport>> {
        // Tensor-parallel peers decode the same examples: their first rank writes the images.
        let report_dir = report_dir.filter(|_| mesh.tp().is_none_or(|g| g.rank() == 0));
        Ok(evaluate_tasks(
            &self.model,
            &self.tok,
            &eval_setup(cfg),
            mesh.dp(),
            step,
            report_dir,
        )?)
    }
}

/// The PaLI folder `dir` on `device`, its position embeddings resampled to `want`'s image size
/// when it was trained at another (the paper's stage 2 and transfer at higher resolution).
fn load_at_resolution(dir: &Path, want: &PaliConfig, device: Device) -> Result<PaliModel> {
    let size = want.vision_config.image_size;
    let saved = PaliConfig::load(&dir.join(palisade_model::folder::CONFIG_FILE))?;
    if saved.vision_config.image_size == size {
        return Ok(PaliModel::load(dir, device)?);
    }
    tracing::info!(
        "resampling {} from {} to {size} px",
        dir.display(),
        saved.vision_config.image_size
    );
    let resized = PaliModel::load(dir, Device::Cpu)?.resized(size, Resample::Bilinear)?;
    let m = PaliModel::new(resized.config(), device)?;
    weights::load_tensors_into(&m.vs, weights::named_cpu(&resized.vs), dir)?;
    Ok(m)
}
