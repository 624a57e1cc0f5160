//! `palisade import`.

use anyhow::Result;
use palisade_trainer::model_folders;
use std::path::PathBuf;

/// Import sources.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// A transformers SiglipModel folder (config.json + model.safetensors) into a palisade model folder.
    HfSiglip {
        /// The transformers folder.
        hf_dir: PathBuf,
        /// Output model folder (created; must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// A transformers T5ForConditionalGeneration folder (T5 v1.0, v1.1, UL2) into a palisade folder.
    HfT5 {
        /// The transformers folder.
        hf_dir: PathBuf,
        /// Output folder (created; must not exist).
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs an import and says what it wrote.
pub fn run(c: Command) -> Result<()> {
    let written = match c {
        Command::HfSiglip { hf_dir, out } => model_folders::import_siglip(&hf_dir, &out)?,
        Command::HfT5 { hf_dir, out } => model_folders::import_t5(&hf_dir, &out)?,
    };
    println!("{written}");
    Ok(())
}
