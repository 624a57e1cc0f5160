//! `palisade forward`.

use anyhow::{bail, Result};
use palisade_model::{weights, SiglipModel};
use std::path::PathBuf;

/// Arguments of `palisade forward`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model or checkpoint folder.
    #[arg(long)]
    checkpoint: PathBuf,
    /// safetensors with `pixel_values` [B,3,S,S] and/or `input_ids` [B,L].
    #[arg(long)]
    inputs: PathBuf,
    /// safetensors to write: `image_embeds`, `text_embeds`, `logits_per_image`, `logits_per_text`.
    #[arg(long)]
    out: PathBuf,
}

/// Runs the model on the inputs and writes its outputs.
pub fn run(a: Args) -> Result<()> {
    let model = SiglipModel::load(&a.checkpoint, tch::Device::Cpu)?;
    let mut inputs = weights::read(&a.inputs)?;
    let mut take = |name: &str| {
        inputs
            .iter()
            .position(|(n, _)| n == name)
            .map(|i| inputs.swap_remove(i).1)
    };
    let pixels = take("pixel_values");
    let ids = take("input_ids");
    if pixels.is_none() && ids.is_none() {
        bail!(
            "{}: holds neither pixel_values nor input_ids",
            a.inputs.display()
        );
    }
    let out = tch::no_grad(|| model.forward(pixels.as_ref(), ids.as_ref()))?;
    let mut tensors = Vec::new();
    if let Some(t) = out.image_embeds {
        tensors.push(("image_embeds".to_string(), t));
    }
    if let Some(t) = out.text_embeds {
        tensors.push(("text_embeds".to_string(), t));
    }
    if let Some(t) = out.logits_per_image {
        tensors.push(("logits_per_text".to_string(), t.tr().contiguous()));
        tensors.push(("logits_per_image".to_string(), t.contiguous()));
    }
    let names: Vec<String> = tensors
        .iter()
        .map(|(n, t)| format!("{n} {:?}", t.size()))
        .collect();
    weights::write_atomic(&tensors, &a.out)?;
    println!("wrote {} to {}", names.join(", "), a.out.display());
    Ok(())
}
