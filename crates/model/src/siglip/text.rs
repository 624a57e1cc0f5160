//! The SigLIP text tower: token + learned position embeddings, pre-LN blocks without a causal
//! mask, final LayerNorm, last-token pooling and a linear head (transformers' `SiglipTextTransformer`).

use super::config::SiglipTextConfig;
use super::layers::{layer_norm, Encoder, EncoderDims};
use crate::error::{ModelError, Result};
use tch::nn::{self, Init};
use tch::{Kind, Tensor};

/// The text tower.
#[derive(Debug)]
pub struct TextTransformer {
    cfg: SiglipTextConfig,
    token_embedding: nn::Embedding,
    position_embedding: Tensor,
    encoder: Encoder,
    final_layer_norm: nn::LayerNorm,
    head: nn::Linear,
}

impl TextTransformer {
    /// Each encoder block's variables, in order (for `parallel.shard: full`).
    pub fn units(&self) -> &[crate::param_hook::Unit] {
        self.encoder.units()
    }
    /// Creates the tower under `p` (usually `text_model`).
    pub fn new(p: nn::Path, cfg: &SiglipTextConfig) -> TextTransformer {
        let w = cfg.hidden_size;
        let e = &p / "embeddings";
        let std = (1.0 / w as f64).sqrt();
        let dims = EncoderDims {
            width: w,
            mlp: cfg.intermediate_size,
            heads: cfg.num_attention_heads,
            depth: cfg.num_hidden_layers,
            eps: cfg.layer_norm_eps,
            act: &cfg.hidden_act,
        };
        let emb = nn::EmbeddingConfig {
            ws_init: Init::Randn {
                mean: 0.0,
                stdev: std,
            },
            ..Default::default()
        };
        TextTransformer {
            token_embedding: nn::embedding(
                &e / "token_embedding",
                cfg.vocab_size as i64,
                w as i64,
                emb,
            ),
            position_embedding: (&e / "position_embedding").var(
                "weight",
                &[cfg.max_position_embeddings as i64, w as i64],
                Init::Randn {
                    mean: 0.0,
                    stdev: std,
                },
            ),
            encoder: Encoder::new(&p / "encoder", &dims),
            final_layer_norm: layer_norm(&p / "final_layer_norm", w, cfg.layer_norm_eps),
            head: nn::linear(
                &p / "head",
                w as i64,
                cfg.projection() as i64,
                Default::default(),
            ),
            cfg: cfg.clone(),
        }
    }

    /// Checks that `input_ids` is [B, L] of integers below the vocabulary size, L ≤ max length.
    pub fn check_input(&self, input_ids: &Tensor) -> Result<()> {
        let bad = |msg: String| ModelError::Input {
            name: "input_ids".into(),
            msg,
        };
        let size = input_ids.size();
        if size.len() != 2 || size[1] as usize > self.cfg.max_position_embeddings || size[1] == 0 {
            return Err(bad(format!(
                "shape {size:?}, expected [batch, length] with 1 <= length <= {}",
                self.cfg.max_position_embeddings
            )));
        }
        if !matches!(input_ids.kind(), Kind::Int64 | Kind::Int) {
            return Err(bad(format!("dtype {:?}, expected int64", input_ids.kind())));
        }
        if input_ids.numel() > 0 {
            let (lo, hi) = (
                input_ids.min().int64_value(&[]),
                input_ids.max().int64_value(&[]),
            );
            if lo < 0 || hi >= self.cfg.vocab_size as i64 {
                return Err(bad(format!(
                    "token ids range {lo}..={hi}, vocabulary has {}",
                    self.cfg.vocab_size
                )));
            }
        }
        Ok(())
    }

    /// Encodes token ids [B, L] to pooled embeddings [B, projection].
    pub fn forward(&self, input_ids: &Tensor) -> Result<Tensor> {
        self.check_input(input_ids)?;
        let len = input_ids.size()[1];
        let x = input_ids.to_kind(Kind::Int64).apply(&self.token_embedding)
            + self.position_embedding.narrow(0, 0, len);
        let h = self.encoder.forward(&x, None).apply(&self.final_layer_norm);
        // SigLIP pools the last position (texts are padded to a fixed length, no mask).
        Ok(h.select(1, len - 1).apply(&self.head))
    }

    /// The tower's config.
    pub fn config(&self) -> &SiglipTextConfig {
        &self.cfg
    }
}
