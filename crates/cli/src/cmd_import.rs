//! `palisade import`.

use anyhow::{Context, Result};
use palisade_model::SiglipModel;
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
}

/// Runs an import.
pub fn run(c: Command) -> Result<()> {
    match c {
        Command::HfSiglip { hf_dir, out } => {
            anyhow::ensure!(
                !out.exists(),
                "{}: already exists; choose a new --out folder",
                out.display()
            );
            let model = SiglipModel::load(&hf_dir, tch::Device::Cpu)
                .with_context(|| format!("importing {}", hf_dir.display()))?;
            // Build in a sibling temp folder, then rename: no half-written model under the final name.
            let tmp = out.with_extension("importing");
            std::fs::create_dir_all(&tmp).with_context(|| tmp.display().to_string())?;
            model.save(&tmp)?;
            std::fs::rename(&tmp, &out).with_context(|| out.display().to_string())?;
            let params: i64 = model
                .vs
                .variables()
                .values()
                .map(|t| t.numel() as i64)
                .sum();
            println!(
                "imported {} ({params} parameters) to {}",
                hf_dir.display(),
                out.display()
            );
        }
    }
    Ok(())
}
