//! T5 config, field for field as transformers' `config.json`.

use crate::error::{ModelError, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Sizes and variant switches of a T5 / mT5 / umT5 / UL2 model. Every field is optional in a
/// `config.json` with transformers' default; `tie_word_embeddings` defaults by `model_type`
/// (`t5` and `umt5` tie, `mt5` does not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "RawT5Config")]
pub struct T5Config {
    /// Vocabulary size (rows of `shared`; may exceed the tokenizer's, as T5's 32,128 for 32,100).
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
    pub num_decoder_layers: Option<usize>,
    /// Attention heads.
    pub num_heads: usize,
    /// Relative-position buckets.
    pub relative_attention_num_buckets: usize,
    /// Distance beyond which positions share a bucket.
    pub relative_attention_max_distance: usize,
    /// RMSNorm epsilon.
    pub layer_norm_epsilon: f64,
    /// `relu` (T5 v1.0), `gated-gelu` (v1.1, Flan-T5, mT5), `gated-silu` (UL2), `gelu`, …
    pub feed_forward_proj: String,
    /// Output head shares the input embedding, with the d_model^-0.5 rescale (T5 v1.0).
    pub tie_word_embeddings: bool,
    /// Padding id.
    pub pad_token_id: i64,
    /// End-of-sequence id.
    pub eos_token_id: i64,
    /// First decoder input (T5 uses the pad id).
    pub decoder_start_token_id: i64,
    /// Dropout (kept for the config's round trip; palisade trains without dropout).
    pub dropout_rate: f64,
    /// `t5`, `mt5` or `umt5` (a relative-position bias in every layer, not only the first).
    pub model_type: String,
}

/// The `config.json` as read, before the per-type defaults are filled in.
#[derive(Deserialize)]
#[serde(default)]
struct RawT5Config {
    vocab_size: Option<usize>,
    d_model: usize,
    d_kv: usize,
    d_ff: Option<usize>,
    num_layers: Option<usize>,
    num_decoder_layers: Option<usize>,
    num_heads: Option<usize>,
    relative_attention_num_buckets: usize,
    relative_attention_max_distance: usize,
    layer_norm_epsilon: f64,
    feed_forward_proj: Option<String>,
    tie_word_embeddings: Option<bool>,
    pad_token_id: i64,
    eos_token_id: i64,
    decoder_start_token_id: i64,
    dropout_rate: f64,
    model_type: String,
}

impl Default for RawT5Config {
    fn default() -> Self {
        RawT5Config {
            vocab_size: None,
            d_model: 512,
            d_kv: 64,
            d_ff: None,
            num_layers: None,
            num_decoder_layers: None,
            num_heads: None,
            relative_attention_num_buckets: buckets(),
            relative_attention_max_distance: max_distance(),
            layer_norm_epsilon: eps(),
            feed_forward_proj: None,
            tie_word_embeddings: None,
            pad_token_id: 0,
            eos_token_id: 1,
            decoder_start_token_id: 0,
            dropout_rate: 0.1,
            model_type: t5_type(),
        }
    }
}

impl From<RawT5Config> for T5Config {
    fn from(r: RawT5Config) -> T5Config {
        // transformers' defaults differ by model type: T5Config, MT5Config, UMT5Config.
        let multilingual = r.model_type == "mt5" || r.model_type == "umt5";
        T5Config {
            vocab_size: r
                .vocab_size
                .unwrap_or(if multilingual { 250_112 } else { 32_128 }),
            d_model: r.d_model,
            d_kv: r.d_kv,
            d_ff: r.d_ff.unwrap_or(if multilingual { 1024 } else { 2048 }),
            num_layers: r.num_layers.unwrap_or(if multilingual { 8 } else { 6 }),
            num_decoder_layers: r.num_decoder_layers,
            num_heads: r.num_heads.unwrap_or(if multilingual { 6 } else { 8 }),
            relative_attention_num_buckets: r.relative_attention_num_buckets,
            relative_attention_max_distance: r.relative_attention_max_distance,
            layer_norm_epsilon: r.layer_norm_epsilon,
            feed_forward_proj: r
                .feed_forward_proj
                .unwrap_or_else(|| if multilingual { "gated-gelu" } else { "relu" }.into()),
            tie_word_embeddings: r.tie_word_embeddings.unwrap_or(r.model_type != "mt5"),
            pad_token_id: r.pad_token_id,
            eos_token_id: r.eos_token_id,
            decoder_start_token_id: r.decoder_start_token_id,
            dropout_rate: r.dropout_rate,
            model_type: r.model_type,
        }
    }
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
fn t5_type() -> String {
    "t5".into()
}

/// The model types implemented.
pub const MODEL_TYPES: [&str; 3] = ["t5", "mt5", "umt5"];

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

    /// Activation of the feed-forward as transformers picks it: `gated-gelu` is the tanh
    /// approximation (`gelu_new`), a plain `gelu` the exact one, then `silu` or `relu`.
    pub fn activation(&self) -> &str {
        match self.feed_forward_proj.as_str() {
            "gated-gelu" => "gelu_new",
            p => p.rsplit('-').next().unwrap_or("relu"),
        }
    }

    /// Whether every layer has its own relative-position bias (umT5) rather than the first alone.
    pub fn bias_in_every_layer(&self) -> bool {
        self.model_type == "umt5"
    }

    /// Checks the invariants the model code relies on.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !MODEL_TYPES.contains(&self.model_type.as_str()) {
            return Err(format!(
                "model_type {:?} is not implemented; expected one of {}",
                self.model_type,
                MODEL_TYPES.join(", ")
            ));
        }
        let parts: Vec<&str> = self.feed_forward_proj.split('-').collect();
        let shape_ok = matches!(parts.as_slice(), [_] | ["gated", _]);
        if !shape_ok || !matches!(self.activation(), "relu" | "gelu" | "gelu_new" | "silu") {
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
