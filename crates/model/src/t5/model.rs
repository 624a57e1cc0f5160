//! `T5ForConditionalGeneration`: shared embedding, encoder, decoder and output head, with a
//! key/value cache for incremental decoding.

use super::config::T5Config;
use super::stack::{BlockCache, Decoder, Encoder};
use crate::error::{ModelError, Result};
use crate::folder::{CONFIG_FILE, WEIGHTS_FILE};
use crate::weights;
use std::path::Path;
use tch::nn::{self, Init};
use tch::{Device, Kind, Tensor};

/// Keys/values of every decoder block and the number of positions decoded so far.
#[derive(Debug)]
pub struct DecoderCache {
    blocks: Vec<BlockCache>,
    /// Positions already decoded.
    pub len: i64,
}

impl DecoderCache {
    /// Keeps rows `index` (e.g. surviving beams) of every cached tensor, in that order.
    pub fn reorder(&mut self, index: &Tensor) {
        for b in &mut self.blocks {
            for t in [&mut b.self_k, &mut b.self_v, &mut b.cross_k, &mut b.cross_v] {
                *t = t.index_select(0, index);
            }
        }
    }
}

/// The encoder-decoder, built under a var-store path (names as transformers' T5).
#[derive(Debug)]
pub struct T5Model {
    shared: nn::Embedding,
    encoder: Encoder,
    decoder: Decoder,
    lm_head: Option<nn::Linear>,
    cfg: T5Config,
}

impl T5Model {
    /// Each encoder then decoder block's variables (for `parallel.shard: full`).
    pub fn units(&self) -> Vec<crate::param_hook::Unit> {
        [self.encoder.units(), self.decoder.units()].concat()
    }
    /// Creates `shared`, `encoder.*`, `decoder.*` and (untied) `lm_head` under `p`.
    pub fn new(p: nn::Path, cfg: &T5Config) -> T5Model {
        let emb = nn::EmbeddingConfig {
            ws_init: Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            },
            ..Default::default()
        };
        T5Model {
            shared: nn::embedding(
                &p / "shared",
                cfg.vocab_size as i64,
                cfg.d_model as i64,
                emb,
            ),
            encoder: Encoder::new(&p / "encoder", cfg),
            decoder: Decoder::new(&p / "decoder", cfg),
            lm_head: (!cfg.tie_word_embeddings).then(|| {
                super::layers::linear(
                    &p / "lm_head",
                    cfg.d_model,
                    cfg.vocab_size,
                    (cfg.d_model as f64).powf(-0.5),
                )
            }),
            cfg: cfg.clone(),
        }
    }

    /// The config.
    pub fn config(&self) -> &T5Config {
        &self.cfg
    }

    /// Token embeddings [B, T, D] of `ids` [B, T] (under tensor parallelism the table's rows
    /// are split by vocabulary).
    pub fn embed(&self, ids: &Tensor) -> Tensor {
        crate::tensor_parallel::vocab_embedding(ids, &self.shared.ws)
    }

    /// Checks token ids are [B, T] integers inside the vocabulary.
    pub fn check_ids(&self, name: &str, ids: &Tensor) -> Result<()> {
        let bad = |msg: String| ModelError::Input {
            name: name.into(),
            msg,
        };
        if ids.dim() != 2 || ids.size()[1] == 0 {
            return Err(bad(format!(
                "shape {:?}, expected [batch, length ≥ 1]",
                ids.size()
            )));
        }
        if !matches!(ids.kind(), Kind::Int64 | Kind::Int) {
            return Err(bad(format!("dtype {:?}, expected int64", ids.kind())));
        }
        let (lo, hi) = (ids.min().int64_value(&[]), ids.max().int64_value(&[]));
        if lo < 0 || hi >= self.cfg.vocab_size as i64 {
            return Err(bad(format!(
                "token ids range {lo}..={hi}, vocabulary has {}",
                self.cfg.vocab_size
            )));
        }
        Ok(())
    }

    /// Runs the encoder over embeddings [B, T, D] with a 0/1 mask [B, T].
    pub fn encode(&self, embeds: &Tensor, mask: &Tensor) -> Tensor {
        self.encoder.forward(embeds, mask)
    }

    /// Output logits [B, Q, V] of decoder states (under tensor parallelism this rank's slice
    /// of the vocabulary, V / tp).
    fn head(&self, h: &Tensor) -> Tensor {
        let h = &crate::tensor_parallel::enter(h);
        match &self.lm_head {
            Some(head) => h.apply(head),
            // Tied (T5 v1.0): rescale by d_model^-0.5 before sharing the embedding matrix.
            None => (h * (self.cfg.d_model as f64).powf(-0.5)).matmul(&self.shared.ws.tr()),
        }
    }

    /// Logits for `decoder_input_ids` [B, Q] in one pass (teacher forcing).
    pub fn decode(&self, decoder_input_ids: &Tensor, enc: &Tensor, enc_mask: &Tensor) -> Tensor {
        let y = self.embed(decoder_input_ids);
        self.head(&self.decoder.forward(&y, enc, enc_mask, 0, None))
    }

    /// A fresh cache for decoding against `enc`.
    pub fn start_cache(&self, enc: &Tensor) -> DecoderCache {
        DecoderCache {
            blocks: self.decoder.start_cache(enc),
            len: 0,
        }
    }

    /// Logits [B, Q, V] of the next positions `ids` [B, Q], reusing and extending `cache`.
    pub fn decode_step(
        &self,
        ids: &Tensor,
        enc: &Tensor,
        enc_mask: &Tensor,
        cache: &mut DecoderCache,
    ) -> Tensor {
        let y = self.embed(ids);
        let offset = cache.len;
        let h = self
            .decoder
            .forward(&y, enc, enc_mask, offset, Some(&mut cache.blocks));
        cache.len += ids.size()[1];
        self.head(&h)
    }

    /// Logits of the full model: encode `input_ids` (mask from `attention_mask`), decode
    /// `decoder_input_ids`.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        decoder_input_ids: &Tensor,
    ) -> Tensor {
        let enc = self.encode(&self.embed(input_ids), attention_mask);
        self.decode(decoder_input_ids, &enc, attention_mask)
    }

    /// `labels` shifted right with the decoder start id, −100 replaced by pad (teacher forcing).
    pub fn shift_right(&self, labels: &Tensor) -> Tensor {
        let b = labels.size()[0];
        let start = Tensor::full(
            [b, 1],
            self.cfg.decoder_start_token_id,
            (Kind::Int64, labels.device()),
        );
        let shifted = Tensor::cat(&[&start, &labels.narrow(1, 0, labels.size()[1] - 1)], 1);
        shifted.masked_fill(&shifted.eq(-100), self.cfg.pad_token_id)
    }
}

/// A stand-alone T5 model folder (`config.json` + `model.safetensors`), as transformers saves it.
#[derive(Debug)]
pub struct T5Checkpoint {
    /// The variables.
    pub vs: nn::VarStore,
    /// The model.
    pub model: T5Model,
}

impl T5Checkpoint {
    /// Loads a transformers T5 folder; tied copies of the embedding are accepted and ignored.
    pub fn load(dir: &Path, device: Device) -> Result<T5Checkpoint> {
        let cfg = T5Config::load(&dir.join(CONFIG_FILE))?;
        let vs = nn::VarStore::new(device);
        let model = T5Model::new(vs.root(), &cfg);
        let w = weights::Weights::open_dir(dir)?;
        let tied = cfg.tie_word_embeddings;
        let tensors = w
            .lazy()
            .into_iter()
            .filter(|(n, _)| {
                !(n.ends_with("embed_tokens.weight")
                    || (tied && n == "lm_head.weight")
                    || n.ends_with("EncDecAttention.relative_attention_bias.weight"))
            })
            .collect();
        weights::load_lazy(&vs, tensors, "", w.origin())?;
        Ok(T5Checkpoint { vs, model })
    }

    /// Writes `config.json` and `model.safetensors` into `dir` (which must exist).
    pub fn save(&self, dir: &Path) -> Result<()> {
        self.model.config().save(&dir.join(CONFIG_FILE))?;
        weights::save(&self.vs, &dir.join(WEIGHTS_FILE))
    }
}

/// Cross-entropy of `logits` [B, T, V] against `labels` [B, T] ignoring −100, with label
/// smoothing (from vocabulary slices under tensor parallelism).
pub fn token_cross_entropy(logits: &Tensor, labels: &Tensor, label_smoothing: f64) -> Tensor {
    let v = logits.size()[2];
    crate::tensor_parallel::vocab_cross_entropy(
        &logits.to_kind(Kind::Float).view([-1, v]),
        &labels.view([-1]),
        label_smoothing,
    )
}
