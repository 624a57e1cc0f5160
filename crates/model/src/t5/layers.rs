//! T5's RMSNorm (no mean, no bias) and its feed-forward blocks.

use crate::tensor_parallel;
use tch::nn::{self, Init, Module};
use tch::{Kind, Tensor};

/// `x / sqrt(mean(x²) + ε) · w`, the variance taken in float32 (transformers' `T5LayerNorm`).
#[derive(Debug)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    /// Creates `weight` under `p`, initialised to ones.
    pub fn new(p: nn::Path, width: usize, eps: f64) -> RmsNorm {
        RmsNorm {
            weight: p.var("weight", &[width as i64], Init::Const(1.0)),
            eps,
        }
    }
}

impl Module for RmsNorm {
    fn forward(&self, x: &Tensor) -> Tensor {
        let var = x
            .to_kind(Kind::Float)
            .square()
            .mean_dim([-1i64].as_slice(), true, Kind::Float);
        let y = x.to_kind(Kind::Float) * (var + self.eps).rsqrt();
        y.to_kind(self.weight.kind()) * &self.weight
    }
}

/// A bias-free linear layer, as every T5 projection.
pub fn linear(p: nn::Path, inp: usize, out: usize, std: f64) -> nn::Linear {
    nn::linear(
        p,
        inp as i64,
        out as i64,
        nn::LinearConfig {
            bias: false,
            ws_init: Init::Randn {
                mean: 0.0,
                stdev: std,
            },
            ..Default::default()
        },
    )
}

/// `wo(act(wi(x)))` or, gated, `wo(act(wi_0(x)) · wi_1(x))` (`DenseReluDense`); under tensor
/// parallelism `wi` holds this rank's hidden units and `wo` the matching input columns.
#[derive(Debug)]
pub struct FeedForward {
    wi: Vec<nn::Linear>,
    wo: nn::Linear,
    act: String,
}

impl FeedForward {
    /// Creates the projections under `p` (`wi` or `wi_0`/`wi_1`, and `wo`).
    pub fn new(p: nn::Path, d_model: usize, d_ff: usize, gated: bool, act: &str) -> FeedForward {
        let std_in = (d_model as f64).powf(-0.5);
        let wi = if gated {
            vec![
                linear(&p / "wi_0", d_model, d_ff, std_in),
                linear(&p / "wi_1", d_model, d_ff, std_in),
            ]
        } else {
            vec![linear(&p / "wi", d_model, d_ff, std_in)]
        };
        FeedForward {
            wi,
            wo: linear(&p / "wo", d_ff, d_model, (d_ff as f64).powf(-0.5)),
            act: act.to_string(),
        }
    }
}

impl Module for FeedForward {
    fn forward(&self, x: &Tensor) -> Tensor {
        let x = &tensor_parallel::enter(x);
        let h = x.apply(&self.wi[0]);
        let h = match self.act.as_str() {
            "gelu_new" => h.gelu("tanh"),
            "gelu" => h.gelu("none"),
            "silu" => h.silu(),
            _ => h.relu(),
        };
        let h = match self.wi.get(1) {
            Some(gate) => h * x.apply(gate),
            None => h,
        };
        tensor_parallel::row_linear(&h, &self.wo)
    }
}
