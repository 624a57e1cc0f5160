//! T5 config, field for field as transformers' `config.json`.

use crate::error::{ModelError, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Sizes and variant switches of a T5 / UL2 model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct T5Config {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Model width.
    pub d_model: usize,
    /// Width of each attention head.
    pub d_kv: usize,
    /// Feed-forward width.
    pub d_ff: usize,
    /// Encoder blocks.
    pub num_layers: usize,
    /// Decoder blocks (default: `num_layers`).
    #[serde(default)]
    pub num_decoder_layers: Option<usize>,
    /// Attention heads.
    pub num_heads: usize,
    /// Relative-position buckets.
    #[serde(default = "buckets")]
    pub relative_attention_num_buckets: usize,
    /// Distance beyond which positions share a bucket.
    #[serde(default = "max_distance")]
    pub relative_attention_max_distance: usize,
    /// RMSNorm epsilon.
    #[serde(default = "eps")]
    pub layer_norm_epsilon: f64,
    /// `relu` (T5 v1.0) or `gated-gelu` (v1.1, UL2).
    #[serde(default = "relu")]
    pub feed_forward_proj: String,
    /// Output head shares the input embedding, with the d_model^-0.5 rescale (T5 v1.0).
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
    /// Padding id.
    #[serde(default)]
    pub pad_token_id: i64,
    /// End-of-sequence id.
    #[serde(default = "one")]
    pub eos_token_id: i64,
    /// First decoder input (T5 uses the pad id).
    #[serde(default)]
    pub decoder_start_token_id: i64,
    /// Dropout (kept for the config's round trip; palisade trains without dropout).
    #[serde(default)]
    pub dropout_rate: f64,
    /// Always `t5`.
    #[serde(default = "t5_type")]
    pub model_type: String,
}

fn buckets() -> usize {
    32
}
fn max_distance() -> usize {
    128
}
fn eps() -> f64 {
    1e-6
}
fn relu() -> String {
    "relu".into()
}
fn yes() -> bool {
    true
}
fn one() -> i64 {
    1
}
fn t5_type() -> String {
    "t5".into()
}

/// A T5 size: width, head width, feed-forward, layers, heads.
type Size = (usize, usize, usize, usize, usize);

/// Named sizes: test sizes, T5 v1.1 / UL2 sizes (gated-GELU, untied), and PaLI-3's 3B UL2.
const PRESETS: &[(&str, Size)] = &[
    ("mu", (32, 8, 64, 1, 4)),
    ("tiny", (64, 16, 128, 2, 4)),
    ("small", (128, 32, 384, 4, 4)),
    ("t5-v1_1-small", (512, 64, 1024, 8, 6)),
    ("t5-v1_1-base", (768, 64, 2048, 12, 12)),
    ("t5-v1_1-large", (1024, 64, 2816, 24, 16)),
    ("ul2-3b", (2048, 64, 5120, 24, 32)),
];

impl T5Config {
    /// A gated-GELU, untied config of the named size (the UL2 / T5 v1.1 family).
    pub fn preset(name: &str, vocab_size: usize) -> Result<T5Config> {
        let &(_, (d_model, d_kv, d_ff, num_layers, num_heads)) =
            PRESETS.iter().find(|(n, _)| *n == name).ok_or_else(|| {
                let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
                ModelError::Config(format!(
                    "language model preset {name:?} is unknown; expected one of {}",
                    names.join(", ")
                ))
            })?;
        Ok(T5Config {
            vocab_size,
            d_model,
            d_kv,
            d_ff,
            num_layers,
            num_decoder_layers: None,
            num_heads,
            relative_attention_num_buckets: buckets(),
            relative_attention_max_distance: max_distance(),
            layer_norm_epsilon: eps(),
            feed_forward_proj: "gated-gelu".into(),
            tie_word_embeddings: false,
            pad_token_id: 0,
            eos_token_id: 1,
            decoder_start_token_id: 0,
            dropout_rate: 0.0,
            model_type: t5_type(),
        })
    }

    /// Decoder depth.
    pub fn decoder_layers(&self) -> usize {
        self.num_decoder_layers.unwrap_or(self.num_layers)
    }

    /// Whether the feed-forward is gated (`gated-gelu`, `gated-relu`, …).
    pub fn is_gated(&self) -> bool {
        self.feed_forward_proj.starts_with("gated-")
    }

    /// Activation of the feed-forward (`gelu` means tanh-approximated GELU, as T5's `gelu_new`).
    pub fn activation(&self) -> &str {
        self.feed_forward_proj.rsplit('-').next().unwrap_or("relu")
    }

    /// Checks the invariants the model code relies on.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !matches!(self.activation(), "relu" | "gelu" | "silu")
            || self.feed_forward_proj.split('-').count() > 2
        {
            return Err(format!(
                "feed_forward_proj {:?} is not relu, gelu, gated-gelu, gated-relu or gated-silu",
                self.feed_forward_proj
            ));
        }
        if self.d_model == 0 || self.num_heads == 0 || self.d_kv == 0 || self.vocab_size == 0 {
            return Err("d_model, num_heads, d_kv and vocab_size must be positive".into());
        }
        if self.relative_attention_num_buckets < 4
            || self.relative_attention_max_distance < self.relative_attention_num_buckets / 2
        {
            return Err(
                "relative_attention_num_buckets must be ≥ 4 and max_distance ≥ buckets/2".into(),
            );
        }
        Ok(())
    }

    /// Reads a transformers `config.json`.
    pub fn load(path: &Path) -> Result<T5Config> {
        crate::folder::read_json_config(path, T5Config::validate)
    }

    /// Writes `config.json` as transformers' `T5ForConditionalGeneration` reads it.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut v = serde_json::to_value(self).map_err(|source| ModelError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        v["architectures"] = serde_json::json!(["T5ForConditionalGeneration"]);
        crate::folder::write_json_config(path, &v)
    }
}
