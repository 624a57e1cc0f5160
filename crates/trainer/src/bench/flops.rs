//! Model FLOPs of a training step, counted from the matrix products (2 FLOPs per
//! multiply-add; backward costs twice the forward), for MFU: FLOPs per step ÷ step time ÷ the
//! accelerator's peak. Norms, softmax and the optimizer are left out, as MFU conventionally does.

use palisade_model::pali::PaliConfig;
use palisade_model::siglip::SiglipConfig;
use palisade_model::t5::T5Config;

/// Forward FLOPs of `layers` self-attention blocks of width `w` (attention width `inner`) and
/// MLP width `mlp` (with `mlp_mats` matrices: 2 plain, 3 gated) over `n` tokens.
fn encoder_blocks(layers: usize, n: f64, w: f64, inner: f64, mlp: f64, mlp_mats: f64) -> f64 {
    layers as f64 * (8.0 * n * w * inner + 2.0 * mlp_mats * n * w * mlp + 4.0 * n * n * inner)
}

/// Forward FLOPs of a SigLIP ViT over one image, pooling head included.
fn vit_forward(v: &palisade_model::siglip::SiglipVisionConfig) -> f64 {
    let n = (v.image_size / v.patch_size).pow(2) as f64;
    let w = v.hidden_size as f64;
    let patch = 2.0 * n * (v.num_channels * v.patch_size * v.patch_size) as f64 * w;
    // The MAP head: one query attending over n tokens, then an MLP on it.
    let head = if v.vision_use_head {
        4.0 * n * w * w + 8.0 * w * w + 4.0 * w * v.intermediate_size as f64 + 4.0 * n * w
    } else {
        0.0
    };
    let mlp = v.intermediate_size as f64;
    patch + encoder_blocks(v.num_hidden_layers, n, w, w, mlp, 2.0) + head
}

/// FLOPs of one SigLIP training step on `batch` pairs: both towers forward and backward, and
/// the batch × batch similarity matrix.
pub fn siglip_step(cfg: &SiglipConfig, batch: usize) -> f64 {
    let t = &cfg.text_config;
    let (n, w) = (t.max_position_embeddings as f64, t.hidden_size as f64);
    let text = encoder_blocks(
        t.num_hidden_layers,
        n,
        w,
        w,
        t.intermediate_size as f64,
        2.0,
    ) + 2.0 * w * t.projection_size.unwrap_or(t.hidden_size) as f64;
    let b = batch as f64;
    let dim = cfg.vision_config.hidden_size as f64;
    3.0 * (b * (vit_forward(&cfg.vision_config) + text) + 2.0 * b * b * dim)
}

/// Forward FLOPs of a T5 encoder over `e` tokens and decoder over `d` tokens, LM head included.
fn t5_forward(t: &T5Config, e: f64, d: f64) -> f64 {
    let (w, inner, ff) = (
        t.d_model as f64,
        (t.num_heads * t.d_kv) as f64,
        t.d_ff as f64,
    );
    let mats = if t.feed_forward_proj.starts_with("gated") {
        3.0
    } else {
        2.0
    };
    let dec_layers = t.num_decoder_layers.unwrap_or(t.num_layers);
    let enc = encoder_blocks(t.num_layers, e, w, inner, ff, mats);
    let dec_self = encoder_blocks(dec_layers, d, w, inner, ff, mats);
    // Cross-attention: queries and output on d tokens, keys and values on e, scores d × e.
    let cross =
        dec_layers as f64 * (4.0 * d * w * inner + 4.0 * e * w * inner + 4.0 * d * e * inner);
    enc + dec_self + cross + 2.0 * d * w * t.vocab_size as f64
}

/// FLOPs of one PaLI training step on `batch` examples of `prompt` + `target` tokens: the
/// language model forward and backward; the ViT (and projector) forward only when frozen.
pub fn pali_step(
    cfg: &PaliConfig,
    batch: usize,
    prompt: usize,
    target: usize,
    train_vision: bool,
) -> f64 {
    let v = &cfg.vision_config;
    let vis_tokens = ((v.image_size / v.patch_size).pow(2)) as f64;
    let vit = vit_forward(v) + 2.0 * vis_tokens * (v.hidden_size * cfg.text_config.d_model) as f64;
    let lm = t5_forward(&cfg.text_config, vis_tokens + prompt as f64, target as f64);
    let vit_factor = if train_vision { 3.0 } else { 1.0 };
    batch as f64 * (vit_factor * vit + 3.0 * lm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_counts_its_matrix_products() {
        // One block, 2 tokens, width 4, MLP 8: 8·2·4·4 + 4·2·4·8 + 4·2·2·4 = 256 + 256 + 64.
        assert_eq!(encoder_blocks(1, 2.0, 4.0, 4.0, 8.0, 2.0), 576.0);
    }

    #[test]
    fn b16_at_224_is_about_the_published_count() {
        // ViT-B/16 at 224 px: the published 17.6 G multiply-adds (fvcore's "GFLOPs") per image
        // forward, i.e. about 35 GFLOPs at 2 per multiply-add.
        let cfg = palisade_model::siglip::TowerSpec {
            preset: Some("B/16".into()),
            image_size: Some(224),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        let g = vit_forward(&cfg) / 1e9;
        assert!((33.0..37.0).contains(&g), "{g} GFLOPs");
    }
}
