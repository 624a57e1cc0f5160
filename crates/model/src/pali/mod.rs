//! PaLI: the ViT's visual tokens (before pooling) are linearly projected to the language model's
//! width and prepended to the embedded prompt; the T5/UL2 encoder reads both, the decoder writes
//! the answer. Video: each frame goes through the ViT alone and the frames' tokens are concatenated.

mod assemble;
mod config;

pub use assemble::PaliInit;
pub use config::{PaliConfig, PRESETS};

use crate::error::{ModelError, Result};
use crate::folder::{CONFIG_FILE, WEIGHTS_FILE};
use crate::siglip::vit::{resample_posemb, Resample, VisionTransformer};
use crate::t5::{token_cross_entropy, DecoderCache, T5Model};
use crate::weights;
use crate::weights::Weights;
use std::path::Path;
use tch::nn::{self, Init};
use tch::{Device, Kind, Tensor};

/// The encoder's input: visual and prompt tokens, and which are real.
#[derive(Debug)]
pub struct Encoded {
    /// Encoder output [B, F·N + L, D].
    pub states: Tensor,
    /// 0/1 mask [B, F·N + L].
    pub mask: Tensor,
}

/// The PaLI model and its variables (`vision_model.*`, `multi_modal_projector.linear.*`,
/// `language_model.*` with T5 names).
#[derive(Debug)]
pub struct PaliModel {
    /// All parameters.
    pub vs: nn::VarStore,
    /// Image encoder.
    pub vision: VisionTransformer,
    /// Visual token projection to the language model's width.
    pub projector: nn::Linear,
    /// Encoder-decoder.
    pub lm: T5Model,
    cfg: PaliConfig,
}

impl PaliModel {
    /// Every ViT and language-model block's variables (for `parallel.shard: full`).
    pub fn units(&self) -> Vec<crate::param_hook::Unit> {
        [self.vision.units().to_vec(), self.lm.units()].concat()
    }
    /// A freshly initialised model.
    pub fn new(cfg: &PaliConfig, device: Device) -> Result<PaliModel> {
        let vs = nn::VarStore::new(device);
        let (vision, projector, lm) = {
            let root = vs.root();
            let w = cfg.vision_config.hidden_size as i64;
            let lin = nn::LinearConfig {
                ws_init: Init::Randn {
                    mean: 0.0,
                    stdev: (w as f64).powf(-0.5),
                },
                ..Default::default()
            };
            (
                VisionTransformer::new(&root / "vision_model", &cfg.vision_config),
                nn::linear(
                    &root / "multi_modal_projector" / "linear",
                    w,
                    cfg.text_config.d_model as i64,
                    lin,
                ),
                T5Model::new(&root / "language_model", &cfg.text_config),
            )
        };
        Ok(PaliModel {
            vs,
            vision,
            projector,
            lm,
            cfg: cfg.clone(),
        })
    }

    /// Loads a PaLI folder (`config.json` + weights, in one file or shards).
    pub fn load(dir: &Path, device: Device) -> Result<PaliModel> {
        let cfg = PaliConfig::load(&dir.join(CONFIG_FILE))?;
        let m = PaliModel::new(&cfg, device)?;
        weights::load_dir(&m.vs, dir)?;
        Ok(m)
    }

    /// Writes `config.json` and `model.safetensors` into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        self.cfg.save(&dir.join(CONFIG_FILE))?;
        weights::save(&self.vs, &dir.join(WEIGHTS_FILE))
    }

    /// The config.
    pub fn config(&self) -> &PaliConfig {
        &self.cfg
    }

    /// Initialises the ViT from a SigLIP model folder (a `SiglipModel` or a vision-only
    /// `SiglipVisionModel`; its text tower and pooling head dropped), resampling the position
    /// embeddings when its resolution differs. Tensors are read one at a time.
    pub fn load_vision_from(&self, siglip_dir: &Path, resample: Resample) -> Result<()> {
        let w = Weights::open_dir(siglip_dir)?;
        let grid = self.cfg.vision_config.grid() as i64;
        let tensors = w
            .lazy()
            .into_iter()
            .filter(|(n, _)| n.starts_with("vision_model.") && !n.starts_with("vision_model.head."))
            .map(|(n, t)| match n.as_str() {
                assemble::POSEMB => {
                    let width = t.shape().last().copied().unwrap_or(0);
                    let t = t.map(vec![grid * grid, width], move |t| {
                        resample_posemb(&t, grid, resample)
                    });
                    (n, t)
                }
                _ => (n, t),
            })
            .collect();
        weights::load_lazy(&self.vs, tensors, "vision_model.", w.origin())
    }

    /// Initialises the language model from a T5 folder (hub-shaped, one file or shards, or
    /// `palisade import hf-t5`). When this model's vocabulary is larger (location tokens), the
    /// embedding and an untied head grow: rows below `pretrained_vocab` (default: all the file
    /// has) are kept exactly, the others start at the kept rows' mean plus noise of 10⁻⁹ their
    /// per-dimension variance (transformers' `mean_resizing`, diagonal).
    pub fn load_language_model_from(
        &self,
        t5_dir: &Path,
        pretrained_vocab: Option<usize>,
    ) -> Result<()> {
        let w = Weights::open_dir(t5_dir)?;
        let tied = self.cfg.text_config.tie_word_embeddings;
        let rows = self.cfg.text_config.vocab_size as i64;
        let tensors = w
            .lazy()
            .into_iter()
            .filter(|(n, _)| {
                !(n.ends_with("embed_tokens.weight")
                    || (tied && n == "lm_head.weight")
                    || n.ends_with("EncDecAttention.relative_attention_bias.weight"))
            })
            .map(|(n, t)| {
                let t = match n.as_str() {
                    "shared.weight" | "lm_head.weight" => {
                        let width = t.shape().get(1).copied().unwrap_or(0);
                        t.map(vec![rows, width], move |t| {
                            Ok(grow_rows(&t, rows, pretrained_vocab))
                        })
                    }
                    _ => t,
                };
                (format!("language_model.{n}"), t)
            })
            .collect();
        weights::load_lazy(&self.vs, tensors, "language_model.", w.origin())
    }

    /// The language model's tensors with transformers' T5 names (loads into T5ForConditionalGeneration).
    pub fn language_model_tensors(&self) -> Vec<(String, Tensor)> {
        weights::select_prefix(weights::named_cpu(&self.vs), "language_model.", "")
    }

    /// Stops gradients into the image encoder (stage 1 and transfer freeze the ViT).
    pub fn freeze_vision(&self, frozen: bool) {
        for (name, t) in self.vs.variables() {
            if name.starts_with("vision_model.") {
                let _ = t.set_requires_grad(!frozen);
            }
        }
    }

    /// Visual tokens [B, F·N, D] of images [B, 3, S, S] or videos [B, F, 3, S, S].
    pub fn visual_tokens(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let size = pixel_values.size();
        let (b, frames, flat) = match size.len() {
            4 => (size[0], 1, pixel_values.shallow_clone()),
            5 if size[1] as usize <= self.cfg.max_frames && size[1] > 0 => (
                size[0],
                size[1],
                pixel_values.reshape([size[0] * size[1], size[2], size[3], size[4]]),
            ),
            _ => {
                return Err(ModelError::Input {
                    name: "pixel_values".into(),
                    msg: format!(
                    "shape {size:?}, expected [batch, 3, S, S] or [batch, frames ≤ {}, 3, S, S]",
                    self.cfg.max_frames
                ),
                })
            }
        };
        let tokens = self.vision.forward(&flat)?.tokens;
        let (_, n, w) = tokens.size3()?;
        Ok(tokens.reshape([b, frames * n, w]).apply(&self.projector))
    }

    /// Runs the encoder over `[visual tokens ; embedded prompt]`.
    pub fn encode(
        &self,
        pixel_values: &Tensor,
        input_ids: &Tensor,
        attention_mask: &Tensor,
    ) -> Result<Encoded> {
        self.lm.check_ids("input_ids", input_ids)?;
        let len = input_ids.size()[1] as usize;
        if len > self.cfg.max_text_len {
            return Err(ModelError::Input {
                name: "input_ids".into(),
                msg: format!(
                    "the prompt has {len} tokens, over the model's limit of {} (max_text_len)",
                    self.cfg.max_text_len
                ),
            });
        }
        if attention_mask.size() != input_ids.size() {
            return Err(ModelError::Input {
                name: "attention_mask".into(),
                msg: format!(
                    "shape {:?} differs from input_ids {:?}",
                    attention_mask.size(),
                    input_ids.size()
                ),
            });
        }
        let vis = self.visual_tokens(pixel_values)?;
        if vis.size()[0] != input_ids.size()[0] {
            return Err(ModelError::Input {
                name: "pixel_values".into(),
                msg: format!(
                    "batch {} differs from input_ids' {}",
                    vis.size()[0],
                    input_ids.size()[0]
                ),
            });
        }
        let txt = self.lm.embed(input_ids);
        let vis = vis.to_kind(txt.kind());
        let (b, n) = (vis.size()[0], vis.size()[1]);
        let x = Tensor::cat(&[&vis, &txt], 1);
        let mask = Tensor::cat(
            &[
                &Tensor::ones([b, n], (Kind::Int64, x.device())),
                &attention_mask.to_kind(Kind::Int64),
            ],
            1,
        );
        Ok(Encoded {
            states: self.lm.encode(&x, &mask),
            mask,
        })
    }

    /// Logits [B, T, V] for `decoder_input_ids` (teacher forcing).
    pub fn forward(
        &self,
        pixel_values: &Tensor,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        decoder_input_ids: &Tensor,
    ) -> Result<Tensor> {
        self.lm.check_ids("decoder_input_ids", decoder_input_ids)?;
        let e = self.encode(pixel_values, input_ids, attention_mask)?;
        Ok(self.lm.decode(decoder_input_ids, &e.states, &e.mask))
    }

    /// Token cross-entropy on the target only (`labels` −100 where ignored), with label smoothing.
    pub fn loss(
        &self,
        pixel_values: &Tensor,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        labels: &Tensor,
        label_smoothing: f64,
    ) -> Result<Tensor> {
        let enc = self.encode(pixel_values, input_ids, attention_mask)?;
        self.loss_from(&enc, labels, label_smoothing)
    }

    /// The same loss from inputs already encoded (evaluation decodes from the same encoding).
    pub fn loss_from(
        &self,
        enc: &Encoded,
        labels: &Tensor,
        label_smoothing: f64,
    ) -> Result<Tensor> {
        let decoder_input_ids = self.lm.shift_right(labels);
        self.lm.check_ids("decoder_input_ids", &decoder_input_ids)?;
        let logits = self.lm.decode(&decoder_input_ids, &enc.states, &enc.mask);
        Ok(token_cross_entropy(&logits, labels, label_smoothing))
    }

    /// A decoder cache for `enc`.
    pub fn start_cache(&self, enc: &Encoded) -> DecoderCache {
        self.lm.start_cache(&enc.states)
    }
}

/// `table` [V0, D] as `rows` rows: the first `min(keep, V0, rows)` kept, the others new, drawn
/// around the kept rows' mean (see [`PaliModel::load_language_model_from`]).
pub fn grow_rows(table: &Tensor, rows: i64, keep: Option<usize>) -> Tensor {
    let (v0, d) = (table.size()[0], table.size()[1]);
    let kept = keep.map_or(v0, |k| k as i64).min(v0).min(rows);
    let t = table.to_kind(Kind::Float);
    let head = t.narrow(0, 0, kept);
    if kept == rows {
        return head;
    }
    let mean = head.mean_dim([0i64].as_slice(), true, Kind::Float);
    let std = head.var_dim([0i64].as_slice(), false, true).sqrt() * 1e-9f64.sqrt();
    let fresh = &mean + Tensor::randn([rows - kept, d], (Kind::Float, t.device())) * &std;
    Tensor::cat(&[&head, &fresh], 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> PaliModel {
        tch::manual_seed(0);
        PaliModel::new(&PaliConfig::preset("mu", 40).unwrap(), Device::Cpu).unwrap()
    }

    fn batch() -> (Tensor, Tensor, Tensor, Tensor) {
        let pixels = Tensor::rand([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        let ids = Tensor::from_slice(&[5i64, 6, 7, 1, 8, 9, 1, 0]).view([2, 4]);
        let mask = ids.ne(0).to_kind(Kind::Int64);
        let labels = Tensor::from_slice(&[10i64, 11, 1, 12, 1, -100]).view([2, 3]);
        (pixels, ids, mask, labels)
    }

    #[test]
    fn frozen_vision_gets_no_gradient_and_the_rest_does() {
        let m = tiny();
        m.freeze_vision(true);
        let (p, i, a, l) = batch();
        m.loss(&p, &i, &a, &l, 0.1).unwrap().backward();
        for (name, t) in m.vs.variables() {
            let has_grad =
                t.grad().defined() && t.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0;
            if name.starts_with("vision_model.") {
                assert!(!t.requires_grad() && !has_grad, "{name} should be frozen");
            }
        }
        let proj = &m.vs.variables()["multi_modal_projector.linear.weight"];
        assert!(proj.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0);
        assert!(weights::trainable(&m.vs)
            .iter()
            .all(|(n, _)| !n.starts_with("vision_model.")));
    }

    #[test]
    fn loss_ignores_masked_targets_and_padding_changes_nothing() {
        let m = tiny();
        let (p, i, a, l) = batch();
        let base = m.loss(&p, &i, &a, &l, 0.0).unwrap().double_value(&[]);
        // Changing a padded prompt position (mask 0) leaves the loss unchanged.
        let i2 = i.copy();
        let _ = i2.get(1).get(3).fill_(33);
        let same = m.loss(&p, &i2, &a, &l, 0.0).unwrap().double_value(&[]);
        assert!((base - same).abs() < 1e-6, "{base} vs {same}");
        // Label smoothing changes it; a target of -100 never counts.
        assert!((m.loss(&p, &i, &a, &l, 0.1).unwrap().double_value(&[]) - base).abs() > 1e-6);
        let l2 = l.copy();
        let _ = l2.get(0).get(2).fill_(-100);
        let _ = l2.get(0).get(1).fill_(-100);
        assert!(m
            .loss(&p, &i, &a, &l2, 0.0)
            .unwrap()
            .double_value(&[])
            .is_finite());
    }

    #[test]
    fn a_grown_vocabulary_keeps_every_pretrained_row_and_adds_rows_near_their_mean() {
        let table = Tensor::randn([10, 4], (Kind::Float, Device::Cpu));
        let grown = grow_rows(&table, 14, Some(8));
        assert_eq!(grown.size(), [14, 4]);
        assert!(grown.narrow(0, 0, 8).equal(&table.narrow(0, 0, 8)));
        let mean = table
            .narrow(0, 0, 8)
            .mean_dim([0i64].as_slice(), false, Kind::Float);
        let new_rows = grown.narrow(0, 8, 6);
        let off = (&new_rows - &mean).abs().max().double_value(&[]);
        assert!(off < 1e-3, "new rows lie at the mean: {off}");
        assert!(
            new_rows
                .get(0)
                .ne_tensor(&new_rows.get(1))
                .any()
                .int64_value(&[])
                == 1
        );
        // Fewer rows than the table: the first are kept.
        assert!(grow_rows(&table, 6, None).equal(&table.narrow(0, 0, 6)));
    }

    #[test]
    fn too_many_frames_or_a_long_prompt_are_named() {
        let m = tiny();
        let frames = Tensor::zeros([1, 17, 3, 32, 32], (Kind::Float, Device::Cpu));
        let ids = Tensor::ones([1, 3], (Kind::Int64, Device::Cpu));
        let e = m.encode(&frames, &ids, &ids).unwrap_err().to_string();
        assert!(e.contains("pixel_values") && e.contains("16"), "{e}");
        let long = Tensor::ones([1, 200], (Kind::Int64, Device::Cpu));
        let img = Tensor::zeros([1, 3, 32, 32], (Kind::Float, Device::Cpu));
        let e = m.encode(&img, &long, &long).unwrap_err().to_string();
        assert!(e.contains("limit of 128"), "{e}");
    }
}
