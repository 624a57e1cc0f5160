//! palisade's models over libtorch, one folder per family — `siglip/` (ViT, text tower, MAP
//! head, sigmoid loss), `t5/` (T5 / UL2 encoder-decoder), `pali/` (ViT tokens into the
//! encoder-decoder) — each config mirroring transformers' `config.json`, weights named as
//! transformers names them. Plus generation (`decoding`), bf16 autocast, strict safetensors
//! loading (`weights`) and the model-folder layout (`folder`).
//!
//! Model code is single-device and plain: it knows tensors, not process groups; parallelism is
//! applied to it from outside (palisade-trainer's `parallel`).

pub mod autocast;
pub mod decoding;
pub mod error;
pub mod folder;
pub mod forward;
pub mod fused;
pub mod grad;
pub mod pali;
pub mod param_hook;
pub mod remat;
pub mod section;
pub mod siglip;
pub mod t5;
pub mod tensor_parallel;
pub mod weights;

pub use error::{ModelError, Result};
pub use folder::model_type;
pub use section::ModelSection;
pub use siglip::{
    sigmoid_loss, SiglipConfig, SiglipModel, SiglipOutput, SiglipTextConfig, SiglipVision,
    SiglipVisionConfig, TextSpec, TowerSpec, VisionSpec,
};
pub use t5::LanguageSpec;
