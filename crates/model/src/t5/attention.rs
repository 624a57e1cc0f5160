//! T5 attention: no 1/√d scaling, and a learned bias per bucket of relative position (computed
//! by the first block of each stack and shared by the others).

use super::layers::linear;
use crate::tensor_parallel;
use tch::nn::{self, Init};
use tch::{Device, Kind, Tensor};

/// T5's bucketing of `key − query` distances: half the buckets for exact small distances, the
/// rest logarithmic up to `max_distance`; bidirectional stacks split buckets by sign.
pub fn relative_position_bucket(
    relative_position: i64,
    bidirectional: bool,
    num_buckets: i64,
    max_distance: i64,
) -> i64 {
    let mut buckets = num_buckets;
    let mut ret = 0;
    let mut n = relative_position;
    if bidirectional {
        buckets /= 2;
        if n > 0 {
            ret += buckets;
        }
        n = n.abs();
    } else {
        n = -n.min(0);
    }
    let max_exact = buckets / 2;
    if n < max_exact {
        return ret + n;
    }
    let large = max_exact as f64
        + ((n as f32 / max_exact as f32).ln() / (max_distance as f32 / max_exact as f32).ln()
            * (buckets - max_exact) as f32) as f64;
    ret + (large as i64).min(buckets - 1)
}

/// One attention layer (`SelfAttention` or `EncDecAttention`). Under tensor parallelism q/k/v
/// and the position bias hold this rank's heads and `o` the matching input columns: the head
/// count follows the projections, and callers pass inputs through `tensor_parallel::enter`.
#[derive(Debug)]
pub struct T5Attention {
    q: nn::Linear,
    k: nn::Linear,
    v: nn::Linear,
    o: nn::Linear,
    relative_attention_bias: Option<nn::Embedding>,
    d_kv: i64,
    bidirectional: bool,
    num_buckets: i64,
    max_distance: i64,
}

/// Sizes of one attention layer.
#[derive(Debug, Clone, Copy)]
pub struct AttentionDims {
    /// Model width.
    pub d_model: usize,
    /// Head width.
    pub d_kv: usize,
    /// Heads.
    pub heads: usize,
    /// Relative-position buckets.
    pub num_buckets: usize,
    /// Largest distinguished distance.
    pub max_distance: usize,
}

impl T5Attention {
    /// Creates q/k/v/o under `p`; `with_bias` adds `relative_attention_bias` (first block only).
    pub fn new(p: nn::Path, d: AttentionDims, with_bias: bool, bidirectional: bool) -> T5Attention {
        let inner = d.d_kv * d.heads;
        let std = (d.d_model as f64).powf(-0.5);
        T5Attention {
            q: linear(
                &p / "q",
                d.d_model,
                inner,
                (d.d_model as f64 * d.d_kv as f64).powf(-0.5),
            ),
            k: linear(&p / "k", d.d_model, inner, std),
            v: linear(&p / "v", d.d_model, inner, std),
            o: linear(&p / "o", inner, d.d_model, (inner as f64).powf(-0.5)),
            relative_attention_bias: with_bias.then(|| {
                let cfg = nn::EmbeddingConfig {
                    ws_init: Init::Randn {
                        mean: 0.0,
                        stdev: std,
                    },
                    ..Default::default()
                };
                nn::embedding(
                    &p / "relative_attention_bias",
                    d.num_buckets as i64,
                    d.heads as i64,
                    cfg,
                )
            }),
            d_kv: d.d_kv as i64,
            bidirectional,
            num_buckets: d.num_buckets as i64,
            max_distance: d.max_distance as i64,
        }
    }

    /// Position bias [1, H, q_len, k_len] for queries at `q_offset..q_offset+q_len`.
    pub fn position_bias(
        &self,
        q_len: i64,
        k_len: i64,
        q_offset: i64,
        device: Device,
    ) -> Option<Tensor> {
        let emb = self.relative_attention_bias.as_ref()?;
        let mut ids = Vec::with_capacity((q_len * k_len) as usize);
        for qi in 0..q_len {
            for ki in 0..k_len {
                ids.push(relative_position_bucket(
                    ki - (qi + q_offset),
                    self.bidirectional,
                    self.num_buckets,
                    self.max_distance,
                ));
            }
        }
        let ids = Tensor::from_slice(&ids)
            .view([q_len, k_len])
            .to_device(device);
        Some(ids.apply(emb).permute([2, 0, 1]).unsqueeze(0))
    }

    /// Splits `x` [B, T, H·d] into heads [B, H, T, d].
    fn heads_of(&self, x: &Tensor) -> Tensor {
        let (b, t, _) = x
            .size3()
            .expect("attention input is [batch, tokens, width]");
        x.view([b, t, -1, self.d_kv]).transpose(1, 2)
    }

    /// Keys and values of `x` [B, T, D], as [B, H, T, d] each.
    pub fn keys_values(&self, x: &Tensor) -> (Tensor, Tensor) {
        (
            self.heads_of(&x.apply(&self.k)),
            self.heads_of(&x.apply(&self.v)),
        )
    }

    /// Attends queries from `x` [B, Q, D] to `k`, `v` with additive `bias` [B or 1, H, Q, K].
    pub fn attend(&self, x: &Tensor, k: &Tensor, v: &Tensor, bias: &Tensor) -> Tensor {
        let q = self.heads_of(&x.apply(&self.q));
        let bias = bias.to_kind(q.kind());
        let o = Tensor::scaled_dot_product_attention(
            &q,
            &k.to_kind(q.kind()),
            &v.to_kind(q.kind()),
            Some(&bias),
            0.0,
            false,
            Some(1.0),
            false,
        );
        let (b, _, t, _) = o
            .size4()
            .expect("attention output is [batch, heads, tokens, d_kv]");
        tensor_parallel::row_linear(&o.transpose(1, 2).reshape([b, t, -1]), &self.o)
    }
}

/// Additive mask [B, 1, 1, K] from a 0/1 mask [B, K]: 0 where attended, a large negative where not.
pub fn padding_bias(mask: &Tensor) -> Tensor {
    let keep = mask.to_kind(Kind::Float);
    let add: Tensor = (keep.ones_like() - keep) * (f32::MIN as f64);
    add.unsqueeze(1).unsqueeze(1)
}

/// Additive causal mask [1, 1, Q, K] for queries at `offset..offset+Q` over keys `0..K`.
pub fn causal_bias(q_len: i64, k_len: i64, offset: i64, device: Device) -> Tensor {
    let q = Tensor::arange(q_len, (Kind::Int64, device)).unsqueeze(1) + offset;
    let k = Tensor::arange(k_len, (Kind::Int64, device)).unsqueeze(0);
    k.gt_tensor(&q)
        .to_kind(Kind::Float)
        .g_mul_scalar(f32::MIN as f64)
        .unsqueeze(0)
        .unsqueeze(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_match_transformers() {
        // Values from transformers' T5Attention._relative_position_bucket(num_buckets=32, max_distance=128).
        let bi = |r| relative_position_bucket(r, true, 32, 128);
        assert_eq!(
            [
                bi(0),
                bi(1),
                bi(-1),
                bi(7),
                bi(8),
                bi(-20),
                bi(200),
                bi(-200)
            ],
            [0, 17, 1, 23, 24, 10, 31, 15]
        );
        let uni = |r| relative_position_bucket(r, false, 32, 128);
        assert_eq!(
            [
                uni(0),
                uni(-1),
                uni(5),
                uni(-15),
                uni(-16),
                uni(-100),
                uni(-1000)
            ],
            [0, 1, 0, 15, 16, 30, 31]
        );
    }
}
