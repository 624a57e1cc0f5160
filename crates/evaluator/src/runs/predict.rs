//! One example through a PaLI model folder (`palisade predict`): an image or a clip's frames and
//! a prompt in, the generated text out — and for detection prompts, the box in pixels.

use crate::error::{EvalError, Result};
use palisade_data::loc::tokens_to_box;
use palisade_data::{decode_rgb, to_model_input, TextTokenizer};
use palisade_model::decoding::{generate, GenerateConfig, Strategy};
use palisade_model::folder::TOKENIZER_FILE;
use palisade_model::pali::PaliModel;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// What to run.
#[derive(Debug, Clone)]
pub struct PredictRequest<'a> {
    /// PaLI model folder (config.json, model.safetensors, tokenizer.json).
    pub checkpoint: &'a Path,
    /// An image file (JPEG, PNG, WebP), or a clip's frames in order (at most the model's
    /// max_frames); one of the two.
    pub media: Media<'a>,
    /// Task prompt: "caption en", "answer en what colour is the circle?", "detect red circle".
    pub prompt: &'a str,
    /// Greedy, beam search or sampling.
    pub strategy: Strategy,
    /// Most generated tokens.
    pub max_new_tokens: usize,
    /// Sampling seed.
    pub seed: i64,
}

/// The model's input.
#[derive(Debug, Clone, Copy)]
pub enum Media<'a> {
    /// One image.
    Image(&'a Path),
    /// A clip's frames.
    Frames(&'a [PathBuf]),
}

/// What the model said.
#[derive(Debug, Clone, PartialEq)]
pub struct Predicted {
    /// The decoded text.
    pub text: String,
    /// For a `detect` prompt: the box (x1, y1, x2, y2) in pixels of the input, or why the text
    /// is not a box.
    pub detection: Option<std::result::Result<[f64; 4], String>>,
}

/// Runs `req` on the CPU.
pub fn predict(req: &PredictRequest) -> Result<Predicted> {
    let model = PaliModel::load(req.checkpoint, tch::Device::Cpu)?;
    predict_with(&model, req)
}

/// Runs `req` on `model`, loaded from `req.checkpoint` (its tensors whole, or sliced by the
/// caller's parallelism layer with its scope entered).
pub fn predict_with(model: &PaliModel, req: &PredictRequest) -> Result<Predicted> {
    let tok = TextTokenizer::load(&req.checkpoint.join(TOKENIZER_FILE))?;
    let size = model.config().vision_config.image_size;
    let files: Vec<&Path> = match req.media {
        Media::Image(p) => vec![p],
        Media::Frames(f) => f.iter().map(PathBuf::as_path).collect(),
    };
    let plane = 3 * size * size;
    let mut pixels = vec![0f32; files.len() * plane];
    let mut dims = (0, 0);
    for (i, f) in files.iter().enumerate() {
        let bytes = std::fs::read(f).map_err(|source| EvalError::Io {
            path: f.to_path_buf(),
            source,
        })?;
        let img = decode_rgb(&bytes).map_err(|e| {
            EvalError::Invalid(format!("{}: cannot decode the image: {e}", f.display()))
        })?;
        dims = img.dimensions();
        to_model_input(&img, size, &mut pixels[i * plane..(i + 1) * plane]);
    }
    let s = size as i64;
    let pixels = Tensor::from_slice(&pixels);
    let pixels = match req.media {
        Media::Image(_) => pixels.view([1, 3, s, s]),
        Media::Frames(_) => pixels.view([1, files.len() as i64, 3, s, s]),
    };
    let ids = tok.encode_for_model(req.prompt, None)?;
    let ids = Tensor::from_slice(&ids).unsqueeze(0);
    let mask = ids.ones_like();
    tch::manual_seed(req.seed);
    let enc = tch::no_grad(|| model.encode(&pixels, &ids, &mask))?;
    let cfg = GenerateConfig {
        strategy: req.strategy,
        max_new_tokens: req.max_new_tokens,
        use_cache: true,
    };
    let out = generate(&model.lm, &enc.states, &enc.mask, &cfg)?;
    let text = tok.decode(out.first().map(Vec::as_slice).unwrap_or_default())?;
    let detection = req.prompt.starts_with("detect ").then(|| {
        tokens_to_box(&text)
            .map(|b| b.to_pixels(f64::from(dims.0), f64::from(dims.1)))
            .map_err(|e| e.to_string())
    });
    Ok(Predicted { text, detection })
}
