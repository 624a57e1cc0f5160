//! The YAML side of PaLI's language model (`model.language`): a T5/UL2 preset and overrides.

use super::config::T5Config;
use crate::error::Result;
use serde::{Deserialize, Serialize};

/// A T5/UL2 preset and optional overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanguageSpec {
    /// Preset: `mu`, `tiny`, `small`, `t5-v1_1-small`, `t5-v1_1-base`, `t5-v1_1-large`, `ul2-3b`.
    pub preset: String,
    /// Vocabulary size (default: the tokenizer's, location tokens included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab_size: Option<usize>,
    /// Override of the preset's encoder depth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_layers: Option<usize>,
    /// Override of the preset's decoder depth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_decoder_layers: Option<usize>,
}

impl LanguageSpec {
    /// Expands the preset with the tokenizer's vocabulary unless one is given.
    pub fn resolve(&self, tokenizer_vocab: usize) -> Result<T5Config> {
        let mut cfg = T5Config::preset(&self.preset, self.vocab_size.unwrap_or(tokenizer_vocab))?;
        if let Some(n) = self.num_layers {
            cfg.num_layers = n;
        }
        if self.num_decoder_layers.is_some() {
            cfg.num_decoder_layers = self.num_decoder_layers;
        }
        Ok(cfg)
    }
}
