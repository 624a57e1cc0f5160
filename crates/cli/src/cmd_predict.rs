//! `palisade predict`: run a PaLI model folder on one image (or video frames) and a prompt.

use crate::cmd_pali::TOKENIZER_FILE;
use anyhow::{Context, Result};
use palisade_data::loc::tokens_to_box;
use palisade_data::{decode_rgb, to_model_input, TextTokenizer};
use palisade_model::decoding::{generate, GenerateConfig, Strategy};
use palisade_model::pali::PaliModel;
use std::path::PathBuf;
use tch::Tensor;

/// Arguments of `palisade predict`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// PaLI model folder (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Image file (JPEG, PNG, WebP).
    #[arg(long, required_unless_present = "frames", conflicts_with = "frames")]
    image: Option<PathBuf>,
    /// Video frames, in order (at most the model's max_frames).
    #[arg(long, num_args = 1..)]
    frames: Vec<PathBuf>,
    /// Task prompt: "caption en", "answer en what colour is the circle?", "detect red circle".
    #[arg(long)]
    prompt: String,
    /// Beam size (1: greedy).
    #[arg(long, default_value_t = 1)]
    beams: usize,
    /// Beam length penalty exponent.
    #[arg(long, default_value_t = 1.0)]
    length_penalty: f64,
    /// Sample at this temperature instead of searching.
    #[arg(long, conflicts_with = "beams")]
    temperature: Option<f64>,
    /// Most generated tokens.
    #[arg(long, default_value_t = 32)]
    max_new_tokens: usize,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    seed: i64,
}

/// Prints the model's output (and for detect prompts, the box in pixels).
pub fn run(a: Args) -> Result<()> {
    let model = PaliModel::load(&a.checkpoint, tch::Device::Cpu)?;
    let tok = TextTokenizer::load(&a.checkpoint.join(TOKENIZER_FILE))?;
    let size = model.config().vision_config.image_size;
    let files: Vec<PathBuf> = a
        .image
        .iter()
        .cloned()
        .chain(a.frames.iter().cloned())
        .collect();
    let mut pixels = vec![0f32; files.len() * 3 * size * size];
    let mut dims = (0, 0);
    for (i, f) in files.iter().enumerate() {
        let bytes = std::fs::read(f).with_context(|| f.display().to_string())?;
        let img = decode_rgb(&bytes)
            .with_context(|| format!("{}: cannot decode the image", f.display()))?;
        dims = img.dimensions();
        to_model_input(
            &img,
            size,
            &mut pixels[i * 3 * size * size..(i + 1) * 3 * size * size],
        );
    }
    let s = size as i64;
    let pixels = Tensor::from_slice(&pixels);
    let pixels = if a.image.is_some() {
        pixels.view([1, 3, s, s])
    } else {
        pixels.view([1, files.len() as i64, 3, s, s])
    };
    let mut ids = tok.encode(&a.prompt)?;
    ids.push(tok.eos_id());
    let ids = Tensor::from_slice(&ids).unsqueeze(0);
    let mask = ids.ones_like();
    let strategy = match (a.temperature, a.beams) {
        (Some(t), _) => Strategy::Sample { temperature: t },
        (None, 1) => Strategy::Greedy,
        (None, k) => Strategy::Beam {
            beams: k,
            length_penalty: a.length_penalty,
        },
    };
    tch::manual_seed(a.seed);
    let enc = tch::no_grad(|| model.encode(&pixels, &ids, &mask))?;
    let cfg = GenerateConfig {
        strategy,
        max_new_tokens: a.max_new_tokens,
        use_cache: true,
    };
    let out = generate(&model.lm, &enc.states, &enc.mask, &cfg)?;
    let text = tok.decode(out.first().map(Vec::as_slice).unwrap_or_default())?;
    println!("{text}");
    if a.prompt.starts_with("detect ") {
        match tokens_to_box(&text) {
            Ok(b) => {
                let [x1, y1, x2, y2] = b.to_pixels(f64::from(dims.0), f64::from(dims.1));
                println!("box (x1, y1, x2, y2 in pixels): {x1:.1} {y1:.1} {x2:.1} {y2:.1}");
            }
            Err(e) => println!("no box: {e}"),
        }
    }
    Ok(())
}
