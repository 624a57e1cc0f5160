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
    /// safetensors with `pixel_values` [B,3,S,S] and/or `input_ids` [B,L] (SigLIP), plus
    /// `decoder_input_ids` and optionally `attention_mask` (PaLI; video pixels are [B,F,3,S,S]).
    #[arg(long)]
    inputs: PathBuf,
    /// safetensors to write: `image_embeds`, `text_embeds`, `logits_per_image`, `logits_per_text`
    /// (SigLIP) or `logits` (PaLI).
    #[arg(long)]
    out: PathBuf,
}

/// Runs the model on the inputs and writes its outputs.
pub fn run(a: Args) -> Result<()> {
    let kind = palisade_model::model_type(&a.checkpoint)?;
    let mut inputs = weights::read(&a.inputs)?;
    let mut take = |name: &str| {
        inputs
            .iter()
            .position(|(n, _)| n == name)
            .map(|i| inputs.swap_remove(i).1)
    };
    if kind == "pali" {
        return forward_pali(&a, &mut take);
    }
    if kind != "siglip" {
        bail!(
            "{}: model_type {kind:?} is not served by forward (siglip or pali)",
            a.checkpoint.display()
        );
    }
    let model = SiglipModel::load(&a.checkpoint, tch::Device::Cpu)?;
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

/// PaLI: `pixel_values`, `input_ids`, optional `attention_mask`, `decoder_input_ids` → `logits`.
fn forward_pali(a: &Args, take: &mut dyn FnMut(&str) -> Option<tch::Tensor>) -> Result<()> {
    let model = palisade_model::pali::PaliModel::load(&a.checkpoint, tch::Device::Cpu)?;
    let mut need = |name: &str| {
        take(name).ok_or_else(|| anyhow::anyhow!("{}: has no {name}", a.inputs.display()))
    };
    let pixels = need("pixel_values")?;
    let ids = need("input_ids")?;
    let dec = need("decoder_input_ids")?;
    let mask = take("attention_mask").unwrap_or_else(|| ids.ones_like());
    let logits = tch::no_grad(|| model.forward(&pixels, &ids, &mask, &dec))?;
    let shape = logits.size();
    weights::write_atomic(&[("logits".to_string(), logits.contiguous())], &a.out)?;
    println!("wrote logits {shape:?} to {}", a.out.display());
    Ok(())
}
