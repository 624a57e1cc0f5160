//! The ViT image encoder: conv patch embedding, learned position embedding, pre-LN blocks, final
//! LayerNorm and (for SigLIP) MAP pooling. Names follow transformers' `SiglipVisionTransformer`.

use super::config::SiglipVisionConfig;
use super::layers::{layer_norm, Encoder, EncoderDims};
use super::pooling::MapHead;
use crate::error::{ModelError, Result};
use tch::nn::{self, Init};
use tch::Tensor;

/// Output of the image tower.
#[derive(Debug)]
pub struct VisionOutput {
    /// Visual tokens before pooling, [B, N, W] (what PaLI projects into the language model).
    pub tokens: Tensor,
    /// MAP-pooled embedding [B, W], when the head exists.
    pub pooled: Option<Tensor>,
}

/// The image tower.
#[derive(Debug)]
pub struct VisionTransformer {
    cfg: SiglipVisionConfig,
    patch_embedding: nn::Conv2D,
    position_embedding: Tensor,
    encoder: Encoder,
    post_layernorm: nn::LayerNorm,
    head: Option<MapHead>,
}

impl VisionTransformer {
    /// Each encoder block's variables, in order (for `parallel.shard: full`).
    pub fn units(&self) -> &[crate::param_hook::Unit] {
        self.encoder.units()
    }
    /// Creates the tower under `p` (usually `vision_model`).
    pub fn new(p: nn::Path, cfg: &SiglipVisionConfig) -> VisionTransformer {
        let w = cfg.hidden_size;
        let e = &p / "embeddings";
        let patch = cfg.patch_size as i64;
        let conv = nn::ConvConfig {
            stride: patch,
            ..Default::default()
        };
        let n = (cfg.grid() * cfg.grid()) as i64;
        let dims = EncoderDims {
            width: w,
            mlp: cfg.intermediate_size,
            heads: cfg.num_attention_heads,
            depth: cfg.num_hidden_layers,
            eps: cfg.layer_norm_eps,
            act: &cfg.hidden_act,
        };
        VisionTransformer {
            patch_embedding: nn::conv2d(
                &e / "patch_embedding",
                cfg.num_channels as i64,
                w as i64,
                patch,
                conv,
            ),
            position_embedding: (&e / "position_embedding").var(
                "weight",
                &[n, w as i64],
                Init::Randn {
                    mean: 0.0,
                    stdev: (1.0 / w as f64).sqrt(),
                },
            ),
            encoder: Encoder::new(&p / "encoder", &dims),
            post_layernorm: layer_norm(&p / "post_layernorm", w, cfg.layer_norm_eps),
            head: cfg.vision_use_head.then(|| {
                MapHead::new(
                    &p / "head",
                    w,
                    cfg.intermediate_size,
                    cfg.num_attention_heads,
                    cfg.layer_norm_eps,
                    &cfg.hidden_act,
                )
            }),
            cfg: cfg.clone(),
        }
    }

    /// Checks that `pixel_values` is [B, C, S, S] at this tower's resolution.
    pub fn check_input(&self, pixel_values: &Tensor) -> Result<()> {
        let s = self.cfg.image_size as i64;
        let c = self.cfg.num_channels as i64;
        match pixel_values.size().as_slice() {
            [_, ch, h, w] if *ch == c && *h == s && *w == s => Ok(()),
            other => Err(ModelError::Input {
                name: "pixel_values".into(),
                msg: format!("shape {other:?}, expected [batch, {c}, {s}, {s}]"),
            }),
        }
    }

    /// Encodes images [B, C, S, S] in [-1, 1].
    pub fn forward(&self, pixel_values: &Tensor) -> Result<VisionOutput> {
        self.check_input(pixel_values)?;
        let x = pixel_values
            .to_kind(self.position_embedding.kind())
            .apply(&self.patch_embedding)
            .flatten(2, 3)
            .transpose(1, 2);
        let x = x + &self.position_embedding;
        let tokens = self.encoder.forward(&x, None).apply(&self.post_layernorm);
        let pooled = self.head.as_ref().map(|h| h.forward(&tokens));
        Ok(VisionOutput { tokens, pooled })
    }

    /// The tower's config.
    pub fn config(&self) -> &SiglipVisionConfig {
        &self.cfg
    }
}

/// Number of visual tokens per image.
pub fn num_tokens(cfg: &SiglipVisionConfig) -> usize {
    cfg.grid() * cfg.grid()
}

/// How a position-embedding grid is resized to another resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resample {
    /// Bilinear, half-pixel centres (big_vision's `resample_posemb`).
    #[default]
    Bilinear,
    /// Bicubic.
    Bicubic,
}

impl std::str::FromStr for Resample {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Resample, String> {
        match s {
            "bilinear" => Ok(Resample::Bilinear),
            "bicubic" => Ok(Resample::Bicubic),
            other => Err(format!("{other:?} is not bilinear or bicubic")),
        }
    }
}

/// Resizes a square grid of position embeddings [n², W] to [new_grid², W].
pub fn resample_posemb(posemb: &Tensor, new_grid: i64, mode: Resample) -> Result<Tensor> {
    let (n, w) = posemb.size2().map_err(|e| ModelError::Input {
        name: "position_embedding".into(),
        msg: e.to_string(),
    })?;
    let old = (n as f64).sqrt().round() as i64;
    if old * old != n {
        return Err(ModelError::Input {
            name: "position_embedding".into(),
            msg: format!("{n} positions do not form a square grid"),
        });
    }
    if old == new_grid {
        return Ok(posemb.shallow_clone());
    }
    let grid = posemb
        .to_kind(tch::Kind::Float)
        .view([1, old, old, w])
        .permute([0, 3, 1, 2]);
    let out = match mode {
        Resample::Bilinear => grid.upsample_bilinear2d([new_grid, new_grid], false, None, None),
        Resample::Bicubic => grid.upsample_bicubic2d([new_grid, new_grid], false, None, None),
    };
    Ok(out
        .permute([0, 2, 3, 1])
        .reshape([new_grid * new_grid, w])
        .to_kind(posemb.kind()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resampling_keeps_a_linear_ramp_and_refuses_non_squares() {
        // A ramp along x, one channel: bilinear upsampling keeps the ends' mean and monotonicity.
        let ramp = Tensor::from_slice(&[0.0f32, 1.0, 0.0, 1.0]).view([4, 1]);
        let up = resample_posemb(&ramp, 4, Resample::Bilinear).unwrap();
        let row: Vec<f32> = Vec::try_from(up.view([4, 4]).get(0)).unwrap();
        assert!(row.windows(2).all(|p| p[0] <= p[1]), "{row:?}");
        assert!((row.iter().sum::<f32>() / 4.0 - 0.5).abs() < 1e-6);
        assert_eq!(
            resample_posemb(&ramp, 2, Resample::Bicubic).unwrap().size(),
            vec![4, 1]
        );
        assert!(resample_posemb(
            &Tensor::zeros([3, 2], (tch::Kind::Float, tch::Device::Cpu)),
            2,
            Resample::Bilinear
        )
        .is_err());
    }
}
