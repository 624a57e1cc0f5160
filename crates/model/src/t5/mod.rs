//! The UL2 / T5 encoder-decoder (T5 v1.0 with ReLU and tied, rescaled output embeddings; v1.1 and
//! UL2 with gated-GELU and an untied head). Parameter names follow transformers'
//! `T5ForConditionalGeneration`.

mod attention;
mod config;
mod layers;
mod model;
mod spec;
mod stack;

pub use attention::relative_position_bucket;
pub use config::{T5Config, MODEL_TYPES};
pub use model::{token_cross_entropy, DecoderCache, T5Checkpoint, T5Model};
pub use spec::LanguageSpec;
