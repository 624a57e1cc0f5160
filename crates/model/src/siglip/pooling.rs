//! Multihead-attention pooling (MAP): a learned probe attends over the tokens, as SigLIP pools
//! images. Weights follow `torch.nn.MultiheadAttention` (packed `in_proj_weight`).

use super::layers::{layer_norm, Mlp};
use tch::nn::{self, Init};
use tch::Tensor;

/// The MAP head (transformers' `SiglipMultiheadAttentionPoolingHead`).
#[derive(Debug)]
pub struct MapHead {
    probe: Tensor,
    in_proj_weight: Tensor,
    in_proj_bias: Tensor,
    out_proj: nn::Linear,
    layernorm: nn::LayerNorm,
    mlp: Mlp,
    heads: i64,
}

impl MapHead {
    /// Creates the head under `p` (`probe`, `attention.*`, `layernorm`, `mlp`).
    pub fn new(
        p: nn::Path,
        width: usize,
        mlp: usize,
        heads: usize,
        eps: f64,
        act: &str,
    ) -> MapHead {
        let w = width as i64;
        let a = &p / "attention";
        let xavier = (6.0 / (2.0 * w as f64)).sqrt();
        MapHead {
            probe: p.var(
                "probe",
                &[1, 1, w],
                Init::Randn {
                    mean: 0.0,
                    stdev: (1.0 / w as f64).sqrt(),
                },
            ),
            in_proj_weight: a.var(
                "in_proj_weight",
                &[3 * w, w],
                Init::Uniform {
                    lo: -xavier,
                    up: xavier,
                },
            ),
            in_proj_bias: a.var("in_proj_bias", &[3 * w], Init::Const(0.0)),
            out_proj: nn::linear(&a / "out_proj", w, w, Default::default()),
            layernorm: layer_norm(&p / "layernorm", width, eps),
            mlp: Mlp::new(&p / "mlp", width, mlp, act),
            heads: heads as i64,
        }
    }

    /// Pools `x` [B, N, W] to [B, W].
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let (b, n, w) = x.size3().expect("MAP input is [batch, tokens, width]");
        let dh = w / self.heads;
        let wq = self.in_proj_weight.narrow(0, 0, w);
        let wkv = self.in_proj_weight.narrow(0, w, 2 * w);
        let bq = self.in_proj_bias.narrow(0, 0, w);
        let bkv = self.in_proj_bias.narrow(0, w, 2 * w);
        let q = self
            .probe
            .linear(&wq, Some(&bq))
            .view([1, 1, self.heads, dh])
            .transpose(1, 2)
            .expand([b, self.heads, 1, dh], false);
        let kv = x
            .linear(&wkv, Some(&bkv))
            .view([b, n, 2, self.heads, dh])
            .permute([2, 0, 3, 1, 4]);
        let o = Tensor::scaled_dot_product_attention(
            &q,
            &kv.get(0),
            &kv.get(1),
            None::<Tensor>,
            0.0,
            false,
            None,
            false,
        );
        let h = o.transpose(1, 2).reshape([b, 1, w]).apply(&self.out_proj);
        let h = &h + h.apply(&self.layernorm).apply(&self.mlp);
        h.select(1, 0)
    }
}
