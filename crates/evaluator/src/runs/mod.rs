//! Evaluation runs: a model on held-out data on every rank together, scored whole. SigLIP is
//! evaluated on image-text pairs (retrieval, zero-shot); PaLI on its benchmarks (`eval.tasks`).

mod blind;
pub mod pali;
pub mod predict;
pub mod siglip;

use crate::error::{EvalError, Result};
use crate::EvalConfig;
use palisade_data::{DataError, DataSection, Loader};

/// What an evaluation reads besides the model: the data and eval sections and the seed.
#[derive(Debug, Clone, Copy)]
pub struct EvalSetup<'a> {
    /// The experiment's data section (held-out pairs, threads, prompt and target lengths).
    pub data: &'a DataSection,
    /// What to evaluate and how.
    pub eval: &'a EvalConfig,
    /// The experiment's seed.
    pub seed: u64,
}

/// This rank's loader, or `None` when a small held-out set has fewer row groups than there are
/// ranks and none falls to this one (the others hold the rows; an empty set is reported once
/// all ranks have gathered).
fn share(loader: palisade_data::Result<Loader>, world: usize) -> Result<Option<Loader>> {
    match loader {
        Ok(l) => Ok(Some(l)),
        Err(DataError::EmptyDataset { .. }) if world > 1 => Ok(None),
        Err(e) => Err(EvalError::Data(e)),
    }
}
