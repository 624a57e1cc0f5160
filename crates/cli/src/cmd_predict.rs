//! `palisade predict`: run a PaLI model folder on one image (or video frames) and a prompt.

use anyhow::Result;
use palisade_evaluator::runs::predict::{Media, PredictRequest};
use palisade_model::decoding::Strategy;
use palisade_trainer::predict::predict;
use std::path::PathBuf;

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

/// Prints the model's output (and for detect prompts, the box in pixels); under a launcher the
/// model is split over the ranks (tensor parallelism).
pub fn run(a: Args) -> Result<()> {
    let strategy = match (a.temperature, a.beams) {
        (Some(t), _) => Strategy::Sample { temperature: t },
        (None, 1) => Strategy::Greedy,
        (None, k) => Strategy::Beam {
            beams: k,
            length_penalty: a.length_penalty,
        },
    };
    let media = match &a.image {
        Some(p) => Media::Image(p),
        None => Media::Frames(&a.frames),
    };
    let out = predict(&PredictRequest {
        checkpoint: &a.checkpoint,
        media,
        prompt: &a.prompt,
        strategy,
        max_new_tokens: a.max_new_tokens,
        seed: a.seed,
    })?;
    // Under a launcher the ranks decode together; rank 0 prints.
    let Some(out) = out else {
        return Ok(());
    };
    println!("{}", out.text);
    match out.detection {
        Some(Ok([x1, y1, x2, y2])) => {
            println!("box (x1, y1, x2, y2 in pixels): {x1:.1} {y1:.1} {x2:.1} {y2:.1}")
        }
        Some(Err(e)) => println!("no box: {e}"),
        None => {}
    }
    Ok(())
}
