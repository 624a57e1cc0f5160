//! The stage registry. Each stage kind of the recipe is one implementation of [`StageKind`] in
//! one file, owning everything that differs between kinds: validation of the sections it
//! needs, synthetic data, tokenizer, model build and initialisation, the training source, the
//! loss, the logged scalars, saving and evaluation. Nothing outside this folder matches on the
//! kind; adding one is a file and a line in [`REGISTRY`].

mod pali;
pub(crate) mod siglip;

use crate::accumulate::StepPlan;
use crate::config::ExperimentConfig;
use crate::error::Result;
use crate::parallel::Mesh;
use palisade_data::{Batch, RankShare, TrainSource};
use palisade_evaluator::EvalReport;
use std::path::Path;
use tch::{nn, Device};

/// Every stage kind, by name.
const REGISTRY: &[&dyn StageKind] = &[&siglip::Siglip, &pali::Pali];

/// The stage kind called `name`.
pub fn kind(name: &str) -> std::result::Result<&'static dyn StageKind, String> {
    REGISTRY
        .iter()
        .copied()
        .find(|k| k.name() == name)
        .ok_or_else(|| {
            let names: Vec<&str> = REGISTRY.iter().map(|k| k.name()).collect();
            format!(
                "key stage: {name:?} is not a stage kind; expected one of {}",
                names.join(", ")
            )
        })
}

/// The kind of `cfg`'s stage (configs from [`ExperimentConfig::load`] always have one).
pub fn kind_of(cfg: &ExperimentConfig) -> Result<&'static dyn StageKind> {
    kind(&cfg.stage).map_err(crate::TrainerError::Config)
}

/// What differs between stage kinds before there is a model.
pub trait StageKind: Sync {
    /// Its name in configs (`stage: siglip`).
    fn name(&self) -> &'static str;
    /// Checks the sections this kind needs; messages name the key.
    fn validate(&self, cfg: &ExperimentConfig) -> std::result::Result<(), String>;
    /// The config key naming what this kind is evaluated on (`data.eval`, `eval.tasks`).
    fn eval_key(&self) -> &'static str;
    /// Generates the `data.synth` data and tokenizer this kind trains on, when missing.
    fn ensure_synth_data(&self, cfg: &ExperimentConfig) -> Result<()>;
    /// The model's shape for the memory planner, from the configs alone (no weights).
    fn shape(&self, cfg: &ExperimentConfig) -> Result<crate::plan::Shape>;
    /// The model to train on `device`, initialised from the seed or `model.init*` folders.
    fn build(&self, cfg: &ExperimentConfig, device: Device) -> Result<Box<dyn StageModel>>;
    /// Starts `cfg` from `dir`, the final checkpoint of the recipe stage before it, of kind
    /// `previous`: sets the `model.init*` key that fits, unless the stage names one itself.
    fn start_from(
        &self,
        cfg: &mut ExperimentConfig,
        previous: &str,
        dir: &Path,
    ) -> std::result::Result<(), String>;
    /// A trained model from the model folder `dir`, for evaluation.
    fn load(
        &self,
        cfg: &ExperimentConfig,
        dir: &Path,
        device: Device,
    ) -> Result<Box<dyn StageModel>>;
}

/// A stage's model, with what training and evaluation do with it.
pub trait StageModel {
    /// Its variables (trainable ones require gradients).
    fn vs(&self) -> &nn::VarStore;
    /// Each transformer block's variables: what `parallel.shard: full` gathers and frees.
    fn units(&self) -> Vec<palisade_model::param_hook::Unit>;
    /// This rank's training batches.
    fn train_source(
        &self,
        cfg: &ExperimentConfig,
        share: RankShare,
    ) -> Result<Box<dyn TrainSource>>;
    /// Accumulates into the variables' gradients those of this rank's loss on `batch`, computed
    /// as `plan` says (micro-batches, remat, autocast) and equal to one plain pass's; returns
    /// the loss, whose mean over ranks is the global batch's.
    fn backward(&self, batch: &Batch, mesh: &Mesh, plan: StepPlan) -> Result<f64>;
    /// Scalars to log beside the loss (SigLIP's temperature and bias).
    fn scalars(&self) -> Vec<(String, f64)>;
    /// Writes the model folder's files into `dir`.
    fn save(&self, dir: &Path) -> Result<()>;
    /// Evaluates on the held-out data `cfg` names, on every rank of `mesh` together; `None` when
    /// it names none. With `report_dir`, example images are written under it.
    fn evaluate(
        &self,
        cfg: &ExperimentConfig,
        mesh: &Mesh,
        step: Option<u64>,
        report_dir: Option<&Path>,
    ) -> Result<Option<EvalReport>>;
}

/// The vocabulary size for planning: `key`'s value when the config sets it, else the size of
/// the tokenizer `cfg` names (with the location tokens added when `loc`, as PaLI adds them),
/// which must then exist.
fn planned_vocab(
    cfg: &ExperimentConfig,
    set: Option<usize>,
    key: &str,
    loc: bool,
) -> Result<usize> {
    if let Some(v) = set {
        return Ok(v);
    }
    if !cfg.data.tokenizer.exists() {
        return Err(crate::TrainerError::Config(format!(
            "key {key}: not set, and the tokenizer {} that would give it does not exist",
            cfg.data.tokenizer.display()
        )));
    }
    let tok = cfg.data.load_tokenizer()?;
    Ok(if loc { tok.with_loc_tokens() } else { tok }.vocab_size())
}

/// What the evaluation runs read from an experiment.
fn eval_setup(cfg: &ExperimentConfig) -> palisade_evaluator::EvalSetup<'_> {
    palisade_evaluator::EvalSetup {
        data: &cfg.data,
        eval: &cfg.eval,
        seed: cfg.seed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_found_by_name_and_unknown_names_listed() {
        assert_eq!(kind("siglip").unwrap().name(), "siglip");
        assert_eq!(kind("pali").unwrap().name(), "pali");
        let e = kind("clip").err().unwrap();
        assert!(e.contains("\"clip\"") && e.contains("siglip, pali"), "{e}");
    }
}
