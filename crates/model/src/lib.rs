//! palisade's models over libtorch: the ViT image encoder, the text tower, the SigLIP two-tower
//! model with its sigmoid loss, and safetensors weights named as in Hugging Face transformers.
//!
//! Model code is single-device and plain; parallelism lives in `palisade-sharding`.

pub mod autocast;
pub mod config;
pub mod decoding;
pub mod error;
pub mod layers;
pub mod pali;
pub mod pooling;
pub mod presets;
pub mod siglip;
pub mod sigmoid_loss;
pub mod t5;
pub mod text;
pub mod vit;
pub mod weights;

pub use config::{SiglipConfig, SiglipTextConfig, SiglipVisionConfig, TextSpec, VisionSpec};
pub use error::{ModelError, Result};
pub use siglip::{SiglipModel, SiglipOutput};
pub use sigmoid_loss::sigmoid_loss;
