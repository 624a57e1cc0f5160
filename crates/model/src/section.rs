//! The `model` section of an experiment config: the towers' sizes and what to start from.

use crate::siglip::TowerSpec;
use crate::t5::LanguageSpec;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The model of an experiment: an image tower with SigLIP's text tower, or with PaLI's
/// encoder-decoder; random weights, or weights from model folders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Image tower (SigLIP and PaLI).
    pub vision: TowerSpec,
    /// SigLIP's text tower.
    #[serde(default)]
    pub text: Option<TowerSpec>,
    /// PaLI's encoder-decoder.
    #[serde(default)]
    pub language: Option<LanguageSpec>,
    /// Start from this model folder (of the same kind) instead of random weights.
    #[serde(default)]
    pub init: Option<PathBuf>,
    /// PaLI: a SigLIP model folder whose ViT initialises the image encoder (resampled to
    /// `vision.image_size`; the text tower is dropped).
    #[serde(default)]
    pub init_vision: Option<PathBuf>,
    /// PaLI: a T5 folder (`palisade import hf-t5`) initialising the language model.
    #[serde(default)]
    pub init_language: Option<PathBuf>,
}
