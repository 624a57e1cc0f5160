//! `palisade export`.

use anyhow::Result;
use palisade_trainer::model_folders;
use std::path::PathBuf;

/// Arguments of `palisade export`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model or checkpoint folder (SigLIP, vision-only SigLIP, or PaLI).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Output folder (created; must not exist).
    #[arg(long)]
    out: PathBuf,
    /// Largest weights file; bigger models are written in shards with an index.
    #[arg(long, default_value_t = palisade_model::weights::MAX_SHARD_BYTES)]
    max_shard_bytes: u64,
}

/// Writes the folder and says what it wrote.
pub fn run(a: Args) -> Result<()> {
    let written = model_folders::export_hf(&a.checkpoint, &a.out, a.max_shard_bytes)?;
    println!("{written}");
    Ok(())
}
