//! Activation memory of one micro-batch: the tensors a transformer block keeps for its
//! backward, per example, in elements — split into those held in the activation format
//! (matrix-product outputs: bfloat16 under `bf16_mixed` and `bf16`) and those that stay in the
//! parameters' format (the residual stream and norm outputs, float32 unless `bf16`).
//!
//! Per block of `n` tokens, width `w`, attention width `i`, feed-forward width `f`, `h` heads:
//! residual and norm outputs `4nw`; q, k, v and the attention output `4ni`; the feed-forward's
//! `2f` (`4f` gated: two inputs, the activation and the product); and, where the attention
//! kernel materialises it (the CPU's), the score matrix and its softmax `2hn²` (CUDA's fused
//! kernels keep `h·n` log-sum-exps instead). T5's decoder adds the cross-attention: its query
//! side as above and keys and values over the `s` encoder tokens (`2si`, scores `2hns`). With
//! remat, a stack keeps each segment's input (`nw`) and, while a segment is recomputed, about
//! three times its activations (`REPLAY`). A tensor-parallel group of `tp` splits everything but the residual stream.

use super::shape::{BlockKind, Stack};

/// Elements per example: (activation-format, parameter-format).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Elements {
    /// Matrix-product outputs (bfloat16 in the bf16 modes).
    pub low: f64,
    /// Residual stream and norm outputs.
    pub high: f64,
}

impl std::ops::Add for Elements {
    type Output = Elements;
    fn add(self, o: Elements) -> Elements {
        Elements {
            low: self.low + o.low,
            high: self.high + o.high,
        }
    }
}

impl Elements {
    fn scale(self, k: f64) -> Elements {
        Elements {
            low: self.low * k,
            high: self.high * k,
        }
    }
}

/// One block of `s`, per example; `scores` when the attention kernel keeps its matrix.
pub fn block(s: &Stack, scores: bool, tp: usize) -> Elements {
    let (n, w, i, f, h) = (
        s.tokens as f64,
        s.width as f64,
        s.inner as f64,
        s.mlp as f64,
        s.heads as f64,
    );
    let tp = tp as f64;
    let ff = 2.0 * s.ff_inputs as f64 * n * f;
    let attn = |q: f64, kv: f64| {
        // q and the output (2 per query token), k and v (2 per key token), the scores.
        2.0 * q * i + 2.0 * kv * i + if scores { 2.0 * h * q * kv } else { h * q }
    };
    match s.kind {
        BlockKind::Encoder | BlockKind::T5Encoder => Elements {
            low: (attn(n, n) + ff) / tp,
            high: 4.0 * n * w,
        },
        BlockKind::T5Decoder { cross } => Elements {
            low: (attn(n, n) + attn(n, cross as f64) + ff) / tp,
            high: 6.0 * n * w,
        },
    }
}

/// A whole stack, per example, with segments of `remat` blocks checkpointed (0: none); zero for
/// a frozen stack, which keeps nothing for a backward.
pub fn stack(s: &Stack, scores: bool, tp: usize, remat: usize) -> Elements {
    if !s.trainable {
        return Elements::default();
    }
    let one = block(s, scores, tp);
    if remat == 0 {
        return one.scale(s.blocks as f64);
    }
    let segments = s.blocks.div_ceil(remat) as f64;
    let kept = Elements {
        low: 0.0,
        high: segments * (s.tokens * s.width) as f64,
    };
    kept + one.scale((REPLAY * remat.min(s.blocks)) as f64)
}

/// A replayed segment's working set in units of its activations: the recomputed tensors, their
/// gradients during its backward, and the allocator's slack (measured on the CPU: the ViT of the
/// 36M SigLIP at batch 8 and 32 peaks at 3.1–3.3 blocks above what remat keeps).
const REPLAY: usize = 3;
