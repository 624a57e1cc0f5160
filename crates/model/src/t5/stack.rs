//! Encoder and decoder stacks: pre-norm blocks (`block.{i}.layer.{j}`) and a final RMSNorm.

use super::attention::{causal_bias, padding_bias, AttentionDims, T5Attention};
use super::config::T5Config;
use super::layers::{FeedForward, RmsNorm};
use crate::param_hook::Unit;
use crate::remat;
use crate::tensor_parallel;
use tch::nn;
use tch::Tensor;

fn dims(cfg: &T5Config) -> AttentionDims {
    AttentionDims {
        d_model: cfg.d_model,
        d_kv: cfg.d_kv,
        heads: cfg.num_heads,
        num_buckets: cfg.relative_attention_num_buckets,
        max_distance: cfg.relative_attention_max_distance,
    }
}

/// Block `i`'s variables under `block`: all but block 0's position bias, which every block's
/// attention reads (it is computed before the segments run).
fn block_unit(block: &nn::Path, i: usize, self_attn: &str) -> Unit {
    let u = Unit::at(block);
    if i == 0 {
        u.except(&(block / "layer" / 0 / self_attn / "relative_attention_bias"))
    } else {
        u
    }
}

fn feed_forward(p: nn::Path, cfg: &T5Config) -> FeedForward {
    FeedForward::new(p, cfg.d_model, cfg.d_ff, cfg.is_gated(), cfg.activation())
}

/// One encoder block: self-attention then feed-forward, each `x + f(norm(x))`.
#[derive(Debug)]
struct EncoderBlock {
    attn_norm: RmsNorm,
    attn: T5Attention,
    ff_norm: RmsNorm,
    ff: FeedForward,
}

/// The bidirectional encoder stack.
#[derive(Debug)]
pub struct Encoder {
    blocks: Vec<EncoderBlock>,
    units: Vec<Unit>,
    final_layer_norm: RmsNorm,
}

impl Encoder {
    /// Creates `block.*` and `final_layer_norm` under `p` (usually `encoder`).
    pub fn new(p: nn::Path, cfg: &T5Config) -> Encoder {
        let eps = cfg.layer_norm_epsilon;
        let blocks = (0..cfg.num_layers)
            .map(|i| {
                let b = &p / "block" / i / "layer";
                EncoderBlock {
                    attn_norm: RmsNorm::new(&b / 0 / "layer_norm", cfg.d_model, eps),
                    attn: T5Attention::new(
                        &b / 0 / "SelfAttention",
                        dims(cfg),
                        i == 0 || cfg.bias_in_every_layer(),
                        true,
                    ),
                    ff_norm: RmsNorm::new(&b / 1 / "layer_norm", cfg.d_model, eps),
                    ff: feed_forward(&b / 1 / "DenseReluDense", cfg),
                }
            })
            .collect();
        Encoder {
            blocks,
            units: (0..cfg.num_layers)
                .map(|i| block_unit(&(&p / "block" / i), i, "SelfAttention"))
                .collect(),
            final_layer_norm: RmsNorm::new(&p / "final_layer_norm", cfg.d_model, eps),
        }
    }

    /// Encodes embeddings `x` [B, T, D] under a 0/1 `mask` [B, T]; blocks run as checkpointed
    /// segments inside a remat scope.
    pub fn forward(&self, x: &Tensor, mask: &Tensor) -> Tensor {
        let t = x.size()[1];
        let pad = padding_bias(mask);
        // Block 0's bias serves every block that has none of its own (all but umT5's).
        let shared = remat::shared(
            &(self.blocks[0]
                .attn
                .position_bias(t, t, 0, x.device())
                .expect("block 0 owns the position bias")
                + &pad),
        );
        let n = remat::segment_len();
        let mut h = x.shallow_clone();
        for (c, (chunk, units)) in self.blocks.chunks(n).zip(self.units.chunks(n)).enumerate() {
            let (pad, shared) = (pad.shallow_clone(), shared.shallow_clone());
            let f = move |chunk: &[EncoderBlock], h: &Tensor| {
                chunk
                    .iter()
                    .enumerate()
                    .fold(h.shallow_clone(), |h, (j, b)| {
                        b.forward(&h, c * n + j, &pad, &shared)
                    })
            };
            // SAFETY: the blocks are this model's, which outlives any training step's scope.
            h = unsafe { remat::segment(chunk, units, &h, f) };
        }
        h.apply(&self.final_layer_norm)
    }

    /// Each block's variables, in order.
    pub fn units(&self) -> &[Unit] {
        &self.units
    }
}

impl EncoderBlock {
    /// Block `i` on `h` [B, T, D]: its own position bias plus `pad` if it has one, else `shared`.
    fn forward(&self, h: &Tensor, i: usize, pad: &Tensor, shared: &Tensor) -> Tensor {
        let t = h.size()[1];
        let own = (i > 0)
            .then(|| self.attn.position_bias(t, t, 0, h.device()))
            .flatten()
            .map(|p| p + pad);
        let bias = own.as_ref().unwrap_or(shared);
        let n = tensor_parallel::enter(&h.apply(&self.attn_norm));
        let (k, v) = self.attn.keys_values(&n);
        let h = h + self.attn.attend(&n, &k, &v, bias);
        &h + h.apply(&self.ff_norm).apply(&self.ff)
    }
}

/// One decoder block: causal self-attention, cross-attention, feed-forward.
#[derive(Debug)]
struct DecoderBlock {
    self_norm: RmsNorm,
    self_attn: T5Attention,
    cross_norm: RmsNorm,
    cross_attn: T5Attention,
    ff_norm: RmsNorm,
    ff: FeedForward,
}

/// Keys and values a decoder block keeps between steps.
#[derive(Debug)]
pub struct BlockCache {
    /// Self-attention keys so far, [B, H, T, d].
    pub self_k: Tensor,
    /// Self-attention values so far.
    pub self_v: Tensor,
    /// Cross-attention keys of the encoder output (computed once).
    pub cross_k: Tensor,
    /// Cross-attention values of the encoder output.
    pub cross_v: Tensor,
}

/// The causal decoder stack.
#[derive(Debug)]
pub struct Decoder {
    blocks: Vec<DecoderBlock>,
    units: Vec<Unit>,
    final_layer_norm: RmsNorm,
}

impl Decoder {
    /// Creates `block.*` and `final_layer_norm` under `p` (usually `decoder`).
    pub fn new(p: nn::Path, cfg: &T5Config) -> Decoder {
        let eps = cfg.layer_norm_epsilon;
        let blocks = (0..cfg.decoder_layers())
            .map(|i| {
                let b = &p / "block" / i / "layer";
                DecoderBlock {
                    self_norm: RmsNorm::new(&b / 0 / "layer_norm", cfg.d_model, eps),
                    self_attn: T5Attention::new(
                        &b / 0 / "SelfAttention",
                        dims(cfg),
                        i == 0 || cfg.bias_in_every_layer(),
                        false,
                    ),
                    cross_norm: RmsNorm::new(&b / 1 / "layer_norm", cfg.d_model, eps),
                    cross_attn: T5Attention::new(
                        &b / 1 / "EncDecAttention",
                        dims(cfg),
                        false,
                        false,
                    ),
                    ff_norm: RmsNorm::new(&b / 2 / "layer_norm", cfg.d_model, eps),
                    ff: feed_forward(&b / 2 / "DenseReluDense", cfg),
                }
            })
            .collect();
        Decoder {
            blocks,
            units: (0..cfg.decoder_layers())
                .map(|i| block_unit(&(&p / "block" / i), i, "SelfAttention"))
                .collect(),
            final_layer_norm: RmsNorm::new(&p / "final_layer_norm", cfg.d_model, eps),
        }
    }

    /// Empty caches holding the cross-attention keys/values of `enc` [B, S, D].
    pub fn start_cache(&self, enc: &Tensor) -> Vec<BlockCache> {
        self.blocks
            .iter()
            .map(|blk| {
                let (cross_k, cross_v) = blk.cross_attn.keys_values(&tensor_parallel::enter(enc));
                let empty = cross_k.narrow(2, 0, 0);
                BlockCache {
                    self_k: empty.shallow_clone(),
                    self_v: empty,
                    cross_k,
                    cross_v,
                }
            })
            .collect()
    }

    /// Decodes embeddings `y` [B, Q, D] (positions `offset..offset+Q`) against `enc` [B, S, D]
    /// masked by `enc_mask` [B, S]; with `cache`, keys/values of earlier positions come from and
    /// are appended to it (cross keys/values too), so one new position costs one position of work.
    /// Without a cache (training), blocks run as checkpointed segments inside a remat scope.
    pub fn forward(
        &self,
        y: &Tensor,
        enc: &Tensor,
        enc_mask: &Tensor,
        offset: i64,
        cache: Option<&mut Vec<BlockCache>>,
    ) -> Tensor {
        let q = y.size()[1];
        let k_len = offset + q;
        let dev = y.device();
        let causal = causal_bias(q, k_len, offset, dev);
        let shared = self.blocks[0]
            .self_attn
            .position_bias(q, k_len, offset, dev)
            .expect("block 0 owns the position bias")
            + &causal;
        let cross_bias = padding_bias(enc_mask);
        let bias = DecoderBias {
            causal,
            shared: remat::shared(&shared),
            cross: cross_bias,
            offset,
        };
        let mut h = y.shallow_clone();
        match cache {
            Some(c) => {
                assert_eq!(c.len(), self.blocks.len(), "one cache per decoder block");
                for (i, (b, bc)) in self.blocks.iter().zip(c.iter_mut()).enumerate() {
                    h = b.forward(&h, i, enc, &bias, Some(bc));
                }
            }
            None => {
                let enc = remat::shared(enc);
                let n = remat::segment_len();
                let units = self.units.chunks(n);
                for (c, (chunk, units)) in self.blocks.chunks(n).zip(units).enumerate() {
                    let (enc, bias) = (enc.shallow_clone(), bias.shallow_clone());
                    let f = move |chunk: &[DecoderBlock], h: &Tensor| {
                        chunk
                            .iter()
                            .enumerate()
                            .fold(h.shallow_clone(), |h, (j, b)| {
                                b.forward(&h, c * n + j, &enc, &bias, None)
                            })
                    };
                    // SAFETY: as in the encoder.
                    h = unsafe { remat::segment(chunk, units, &h, f) };
                }
            }
        }
        h.apply(&self.final_layer_norm)
    }

    /// Each block's variables, in order.
    pub fn units(&self) -> &[Unit] {
        &self.units
    }
}

/// The attention biases every decoder block reads.
struct DecoderBias {
    causal: Tensor,
    /// Block 0's position bias plus the causal mask, for blocks without their own.
    shared: Tensor,
    /// The encoder padding's.
    cross: Tensor,
    offset: i64,
}

impl DecoderBias {
    fn shallow_clone(&self) -> DecoderBias {
        DecoderBias {
            causal: self.causal.shallow_clone(),
            shared: self.shared.shallow_clone(),
            cross: self.cross.shallow_clone(),
            offset: self.offset,
        }
    }
}

impl DecoderBlock {
    /// Block `i` on `h` [B, Q, D] against `enc`, appending to its `cache` when given.
    fn forward(
        &self,
        h: &Tensor,
        i: usize,
        enc: &Tensor,
        bias: &DecoderBias,
        cache: Option<&mut BlockCache>,
    ) -> Tensor {
        let q = h.size()[1];
        let k_len = bias.offset + q;
        let own = (i > 0)
            .then(|| {
                self.self_attn
                    .position_bias(q, k_len, bias.offset, h.device())
            })
            .flatten()
            .map(|p| p + &bias.causal);
        let self_bias = own.as_ref().unwrap_or(&bias.shared);
        let n = tensor_parallel::enter(&h.apply(&self.self_norm));
        let (k, v) = self.self_attn.keys_values(&n);
        let (k, v, cross) = match cache {
            Some(bc) => {
                bc.self_k = Tensor::cat(&[&bc.self_k, &k], 2);
                bc.self_v = Tensor::cat(&[&bc.self_v, &v], 2);
                let cross = (bc.cross_k.shallow_clone(), bc.cross_v.shallow_clone());
                (
                    bc.self_k.shallow_clone(),
                    bc.self_v.shallow_clone(),
                    Some(cross),
                )
            }
            None => (k, v, None),
        };
        let h = h + self.self_attn.attend(&n, &k, &v, self_bias);
        let n = tensor_parallel::enter(&h.apply(&self.cross_norm));
        let (ck, cv) =
            cross.unwrap_or_else(|| self.cross_attn.keys_values(&tensor_parallel::enter(enc)));
        let h = &h + self.cross_attn.attend(&n, &ck, &cv, &bias.cross);
        &h + h.apply(&self.ff_norm).apply(&self.ff)
    }
}
