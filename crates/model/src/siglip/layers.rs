//! Transformer building blocks shared by the image and text towers: pre-LN encoder blocks with
//! multi-head self-attention (through libtorch's fused scaled_dot_product_attention) and a GELU MLP.

use crate::tensor_parallel;
use tch::nn::{self, Module};
use tch::Tensor;

/// LayerNorm with the towers' epsilon.
pub fn layer_norm(p: nn::Path, width: usize, eps: f64) -> nn::LayerNorm {
    nn::layer_norm(
        p,
        vec![width as i64],
        nn::LayerNormConfig {
            eps,
            ..Default::default()
        },
    )
}

/// The activation named by a config (`gelu_pytorch_tanh` approximates with tanh).
pub fn activation(name: &str, x: &Tensor) -> Tensor {
    match name {
        "gelu" => x.gelu("none"),
        _ => x.gelu("tanh"),
    }
}

/// Multi-head self-attention with separate q/k/v/out projections (transformers' naming).
/// Under tensor parallelism q/k/v hold this rank's heads (column slices) and out_proj the
/// matching input columns: the head count follows the projections.
#[derive(Debug)]
pub struct Attention {
    q_proj: nn::Linear,
    k_proj: nn::Linear,
    v_proj: nn::Linear,
    out_proj: nn::Linear,
    head_dim: i64,
}

impl Attention {
    /// Creates the projections under `p`.
    pub fn new(p: nn::Path, width: usize, heads: usize) -> Attention {
        let w = width as i64;
        Attention {
            q_proj: nn::linear(&p / "q_proj", w, w, Default::default()),
            k_proj: nn::linear(&p / "k_proj", w, w, Default::default()),
            v_proj: nn::linear(&p / "v_proj", w, w, Default::default()),
            out_proj: nn::linear(&p / "out_proj", w, w, Default::default()),
            head_dim: w / heads as i64,
        }
    }

    /// Attends `x` [B, N, W] to itself; `mask` is an additive or boolean mask broadcastable to
    /// [B, heads, N, N].
    pub fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Tensor {
        // Whole tokens after `enter` (in a sequence-parallel region it gathers them).
        let x = tensor_parallel::enter(x);
        let (b, n, _) = x
            .size3()
            .expect("attention input is [batch, tokens, width]");
        let split = |t: Tensor| t.view([b, n, -1, self.head_dim]).transpose(1, 2);
        let q = split(x.apply(&self.q_proj));
        let k = split(x.apply(&self.k_proj));
        let v = split(x.apply(&self.v_proj));
        let o = Tensor::scaled_dot_product_attention(&q, &k, &v, mask, 0.0, false, None, false);
        tensor_parallel::row_linear(&o.transpose(1, 2).reshape([b, n, -1]), &self.out_proj)
    }
}

/// Two-layer MLP `fc2(act(fc1(x)))`; under tensor parallelism fc1 holds this rank's hidden
/// units and fc2 the matching input columns.
#[derive(Debug)]
pub struct Mlp {
    fc1: nn::Linear,
    fc2: nn::Linear,
    act: String,
}

impl Mlp {
    /// Creates `fc1` and `fc2` under `p`.
    pub fn new(p: nn::Path, width: usize, hidden: usize, act: &str) -> Mlp {
        Mlp {
            fc1: nn::linear(&p / "fc1", width as i64, hidden as i64, Default::default()),
            fc2: nn::linear(&p / "fc2", hidden as i64, width as i64, Default::default()),
            act: act.to_string(),
        }
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> Tensor {
        let h = activation(&self.act, &tensor_parallel::enter(x).apply(&self.fc1));
        tensor_parallel::row_linear(&h, &self.fc2)
    }
}

/// Sizes of a stack of encoder blocks.
#[derive(Debug, Clone, Copy)]
pub struct EncoderDims<'a> {
    /// Token width.
    pub width: usize,
    /// MLP hidden size.
    pub mlp: usize,
    /// Attention heads.
    pub heads: usize,
    /// Number of blocks.
    pub depth: usize,
    /// LayerNorm epsilon.
    pub eps: f64,
    /// MLP activation.
    pub act: &'a str,
}

/// One pre-LN block: `x + attn(ln1(x))`, then `x + mlp(ln2(x))`.
#[derive(Debug)]
pub struct EncoderLayer {
    layer_norm1: nn::LayerNorm,
    self_attn: Attention,
    layer_norm2: nn::LayerNorm,
    mlp: Mlp,
}

impl EncoderLayer {
    /// Creates one block under `p`.
    pub fn new(p: nn::Path, d: &EncoderDims) -> EncoderLayer {
        EncoderLayer {
            layer_norm1: layer_norm(&p / "layer_norm1", d.width, d.eps),
            self_attn: Attention::new(&p / "self_attn", d.width, d.heads),
            layer_norm2: layer_norm(&p / "layer_norm2", d.width, d.eps),
            mlp: Mlp::new(&p / "mlp", d.width, d.mlp, d.act),
        }
    }

    /// Applies the block.
    pub fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Tensor {
        let x = x + self.self_attn.forward(&x.apply(&self.layer_norm1), mask);
        &x + x.apply(&self.layer_norm2).apply(&self.mlp)
    }
}

/// A stack of encoder blocks named `layers.{i}`.
#[derive(Debug)]
pub struct Encoder {
    layers: Vec<EncoderLayer>,
    /// Each block's variables, for the parameter hook.
    units: Vec<crate::param_hook::Unit>,
}

impl Encoder {
    /// Creates `depth` blocks under `p / "layers"`.
    pub fn new(p: nn::Path, d: &EncoderDims) -> Encoder {
        let lp = &p / "layers";
        Encoder {
            layers: (0..d.depth)
                .map(|i| EncoderLayer::new(&lp / i, d))
                .collect(),
            units: (0..d.depth)
                .map(|i| crate::param_hook::Unit::at(&(&lp / i)))
                .collect(),
        }
    }

    /// Each block's variables, in order.
    pub fn units(&self) -> &[crate::param_hook::Unit] {
        &self.units
    }

    /// Applies every block in order, as checkpointed segments inside a remat scope, and as a
    /// sequence-parallel region when the tensor-parallel group asks for one (each segment
    /// recomputed in the region it ran in).
    pub fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Tensor {
        let sp = tensor_parallel::sequence_parallel();
        tensor_parallel::sequence_region(sp, x, |x| {
            let mut h = x.shallow_clone();
            let n = crate::remat::segment_len();
            for (chunk, units) in self.layers.chunks(n).zip(self.units.chunks(n)) {
                let mask = mask.map(Tensor::shallow_clone);
                // SAFETY: the blocks are this model's, which outlives any training step's scope.
                h = unsafe {
                    crate::remat::segment(chunk, units, &h, move |chunk, h| {
                        tensor_parallel::in_region(sp, || {
                            chunk
                                .iter()
                                .fold(h.shallow_clone(), |h, l| l.forward(&h, mask.as_ref()))
                        })
                    })
                };
            }
            h
        })
    }
}
