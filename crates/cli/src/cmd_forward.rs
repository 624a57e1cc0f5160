//! `palisade forward`.

use anyhow::Result;
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

/// Runs the model on the inputs, writes its outputs and names them.
pub fn run(a: Args) -> Result<()> {
    let written = palisade_model::forward::forward(&a.checkpoint, &a.inputs, &a.out)?;
    let names: Vec<String> = written.iter().map(|(n, s)| format!("{n} {s:?}")).collect();
    println!("wrote {} to {}", names.join(", "), a.out.display());
    Ok(())
}
