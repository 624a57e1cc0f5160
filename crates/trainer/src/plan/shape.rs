//! What the memory planner needs of a model: its parameter count, which of them train, and
//! each transformer stack's sizes and sequence lengths — counted from the configs alone, so that
//! a 5B model is planned without allocating it (a test checks the counts against built models).

use palisade_model::pali::PaliConfig;
use palisade_model::siglip::{SiglipConfig, SiglipTextConfig, SiglipVisionConfig};
use palisade_model::t5::T5Config;

/// The attention and feed-forward of one stack's blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// Pre-LayerNorm self-attention and a GELU MLP (the ViT, SigLIP's text tower).
    Encoder,
    /// T5's encoder block: RMSNorm, self-attention, (gated) feed-forward.
    T5Encoder,
    /// T5's decoder block: self-attention, cross-attention over `cross` tokens, feed-forward.
    T5Decoder {
        /// Encoder tokens each decoder block attends to.
        cross: usize,
    },
}

/// One transformer stack, per example.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    /// Its name in the plan (`vision`, `text`, `encoder`, `decoder`).
    pub name: &'static str,
    /// Block kind.
    pub kind: BlockKind,
    /// Blocks.
    pub blocks: usize,
    /// Residual width.
    pub width: usize,
    /// Attention width (heads × head size).
    pub inner: usize,
    /// Feed-forward hidden width.
    pub mlp: usize,
    /// Feed-forward input projections (2 when gated).
    pub ff_inputs: usize,
    /// Attention heads.
    pub heads: usize,
    /// Tokens per example.
    pub tokens: usize,
    /// Whether its parameters train (a frozen tower keeps no activations for backward).
    pub trainable: bool,
    /// Parameters of its blocks.
    pub params: u64,
}

/// A model as the planner sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    /// Its transformer stacks.
    pub stacks: Vec<Stack>,
    /// All parameters (blocks, embeddings, heads).
    pub params: u64,
    /// Those that train.
    pub trainable: u64,
    /// Output positions per example and the vocabulary they score (a token loss), if any.
    pub logits: Option<(usize, usize)>,
    /// The largest width of a parameter matrix split by tensor parallelism: what `tp` must
    /// divide (heads, MLP, vocabulary), with its name.
    pub tp_dims: Vec<(&'static str, usize)>,
}

fn ln(w: usize) -> u64 {
    2 * w as u64
}

/// Parameters of one pre-LN encoder block of width `w`, MLP `m` (q, k, v, o with biases).
fn encoder_block(w: usize, m: usize) -> u64 {
    let (w, m) = (w as u64, m as u64);
    4 * (w * w + w) + 2 * ln(w as usize) + (w * m + m) + (m * w + w)
}

/// Parameters of SigLIP's image tower (with its MAP head when `vision_use_head`).
pub fn vision_params(c: &SiglipVisionConfig) -> (u64, u64) {
    let (w, m) = (c.hidden_size as u64, c.intermediate_size as u64);
    let p = c.patch_size as u64;
    let n = (c.grid() * c.grid()) as u64;
    let blocks = c.num_hidden_layers as u64 * encoder_block(c.hidden_size, c.intermediate_size);
    let mut other = w * c.num_channels as u64 * p * p + w + n * w + ln(c.hidden_size);
    if c.vision_use_head {
        other +=
            w + (3 * w * w + 3 * w) + (w * w + w) + ln(c.hidden_size) + (w * m + m + m * w + w);
    }
    (blocks, other)
}

/// Parameters of SigLIP's text tower.
pub fn text_params(c: &SiglipTextConfig) -> (u64, u64) {
    let w = c.hidden_size as u64;
    let proj = c.projection() as u64;
    let blocks = c.num_hidden_layers as u64 * encoder_block(c.hidden_size, c.intermediate_size);
    let other = (c.vocab_size as u64 + c.max_position_embeddings as u64) * w
        + ln(c.hidden_size)
        + (w * proj + proj);
    (blocks, other)
}

/// Parameters of a T5's encoder blocks, decoder blocks, and the rest (embedding, head, norms).
pub fn t5_params(c: &T5Config) -> (u64, u64, u64) {
    let d = c.d_model as u64;
    let inner = (c.num_heads * c.d_kv) as u64;
    let attn = 4 * d * inner;
    let ff = if c.is_gated() { 3 } else { 2 } * d * c.d_ff as u64;
    let bias = (c.relative_attention_num_buckets * c.num_heads) as u64;
    let biased = |layers: usize| {
        if c.bias_in_every_layer() {
            layers as u64
        } else {
            u64::from(layers > 0)
        }
    };
    let enc = c.num_layers as u64 * (attn + ff + 2 * d) + biased(c.num_layers) * bias;
    let dl = c.decoder_layers();
    let dec = dl as u64 * (2 * attn + ff + 3 * d) + biased(dl) * bias;
    let heads = if c.tie_word_embeddings { 1 } else { 2 };
    (enc, dec, heads * c.vocab_size as u64 * d + 2 * d)
}

/// The ViT's stack at `tokens` per example.
fn vision_stack(v: &SiglipVisionConfig, tokens: usize, trainable: bool, params: u64) -> Stack {
    Stack {
        name: "vision",
        kind: BlockKind::Encoder,
        blocks: v.num_hidden_layers,
        width: v.hidden_size,
        inner: v.hidden_size,
        mlp: v.intermediate_size,
        ff_inputs: 1,
        heads: v.num_attention_heads,
        tokens,
        trainable,
        params,
    }
}

/// A SigLIP model's shape.
pub fn siglip(c: &SiglipConfig) -> Shape {
    let v = &c.vision_config;
    let t = &c.text_config;
    let (vb, vo) = vision_params(v);
    let (tb, to) = text_params(t);
    let params = vb + vo + tb + to + 2;
    Shape {
        stacks: vec![
            vision_stack(v, v.grid() * v.grid(), true, vb),
            Stack {
                name: "text",
                blocks: t.num_hidden_layers,
                width: t.hidden_size,
                inner: t.hidden_size,
                mlp: t.intermediate_size,
                heads: t.num_attention_heads,
                tokens: t.max_position_embeddings,
                params: tb,
                ..vision_stack(v, 0, true, 0)
            },
        ],
        params,
        trainable: params,
        logits: None,
        tp_dims: vec![
            ("model.vision.num_attention_heads", v.num_attention_heads),
            ("model.vision.intermediate_size", v.intermediate_size),
            ("model.text.num_attention_heads", t.num_attention_heads),
            ("model.text.intermediate_size", t.intermediate_size),
        ],
    }
}

/// A PaLI model: `frames` images per example, `prompt` and `target` tokens, the ViT training
/// unless `freeze_vision`.
pub fn pali(
    c: &PaliConfig,
    frames: usize,
    prompt: usize,
    target: usize,
    freeze_vision: bool,
) -> Shape {
    let v = &c.vision_config;
    let l = &c.text_config;
    let (vb, vo) = vision_params(v);
    let (eb, db, lo) = t5_params(l);
    let projector = (v.hidden_size * l.d_model + l.d_model) as u64;
    let vision = vb + vo;
    let params = vision + projector + eb + db + lo;
    let visual = frames * v.grid() * v.grid();
    let enc_tokens = visual + prompt;
    let t5_stack = |name, kind, blocks, tokens, params| Stack {
        name,
        kind,
        blocks,
        width: l.d_model,
        inner: l.num_heads * l.d_kv,
        mlp: l.d_ff,
        ff_inputs: if l.is_gated() { 2 } else { 1 },
        heads: l.num_heads,
        tokens,
        trainable: true,
        params,
    };
    Shape {
        stacks: vec![
            vision_stack(v, visual, !freeze_vision, vb),
            t5_stack(
                "encoder",
                BlockKind::T5Encoder,
                l.num_layers,
                enc_tokens,
                eb,
            ),
            t5_stack(
                "decoder",
                BlockKind::T5Decoder { cross: enc_tokens },
                l.decoder_layers(),
                target,
                db,
            ),
        ],
        params,
        trainable: if freeze_vision {
            params - vision
        } else {
            params
        },
        logits: Some((target, l.vocab_size)),
        tp_dims: vec![
            ("model.vision.num_attention_heads", v.num_attention_heads),
            ("model.vision.intermediate_size", v.intermediate_size),
            ("model.language.num_heads", l.num_heads),
            ("model.language.d_ff", l.d_ff),
            ("model.language.vocab_size", l.vocab_size),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_model::pali::PaliModel;
    use palisade_model::siglip::{SiglipModel, TowerSpec};
    use tch::Device;

    fn numel(vs: &tch::nn::VarStore) -> u64 {
        vs.variables().values().map(|t| t.numel() as u64).sum()
    }

    fn tower(preset: &str, edit: impl FnOnce(&mut TowerSpec)) -> TowerSpec {
        let mut t = TowerSpec {
            preset: Some(preset.into()),
            ..Default::default()
        };
        edit(&mut t);
        t
    }

    #[test]
    fn siglip_counts_equal_the_built_models() {
        for (v, t) in [
            (
                tower("mu", |t| t.image_size = Some(32)),
                tower("mu", |_| {}),
            ),
            (
                tower("tiny/8", |t| t.image_size = Some(48)),
                tower("tiny", |t| t.max_len = Some(20)),
            ),
        ] {
            let cfg = SiglipConfig::from_specs(&v, &t, 300).unwrap();
            let m = SiglipModel::new(&cfg, Device::Cpu).unwrap();
            let s = siglip(&cfg);
            assert_eq!(s.params, numel(&m.vs), "{cfg:?}");
            let blocks: u64 = s.stacks.iter().map(|s| s.params).sum();
            assert!(blocks < s.params);
        }
    }

    #[test]
    fn pali_counts_equal_the_built_models_frozen_or_not() {
        for preset in ["mu", "tiny"] {
            let cfg = PaliConfig::preset(preset, 1324).unwrap();
            let m = PaliModel::new(&cfg, Device::Cpu).unwrap();
            let s = pali(&cfg, 2, 16, 8, false);
            assert_eq!(s.params, numel(&m.vs), "{preset}");
            assert_eq!(s.trainable, s.params);
            m.freeze_vision(true);
            let frozen = pali(&cfg, 2, 16, 8, true);
            let trainable: u64 = palisade_model::weights::trainable(&m.vs)
                .iter()
                .map(|(_, t)| t.numel() as u64)
                .sum();
            assert_eq!(frozen.trainable, trainable, "{preset}");
            assert_eq!(frozen.stacks[0].tokens, 2 * cfg.vision_config.grid().pow(2));
            assert_eq!(frozen.stacks[1].tokens, frozen.stacks[0].tokens + 16);
        }
    }

    #[test]
    fn the_published_sizes_come_out() {
        // PaLI-3: a 2B ViT-G/14 and a 3B UL2 (with a 250k + 1k vocabulary).
        let cfg = PaliConfig::preset("pali3", 250_112 + 1024).unwrap();
        let s = pali(&cfg, 1, 64, 64, false);
        let vit = s.stacks[0].params as f64 / 1e9;
        assert!((1.7..2.1).contains(&vit), "ViT-G/14 blocks {vit} B");
        let all = s.params as f64 / 1e9;
        assert!((4.5..6.0).contains(&all), "PaLI-3 {all} B");
    }
}
