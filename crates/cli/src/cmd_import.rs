//! `palisade import`.

use crate::out_folder::write_folder;
use anyhow::{Context, Result};
use palisade_model::t5::T5Checkpoint;
use palisade_model::SiglipModel;
use std::path::{Path, PathBuf};

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

/// Runs an import.
pub fn run(c: Command) -> Result<()> {
    match c {
        Command::HfSiglip { hf_dir, out } => {
            let model = SiglipModel::load(&hf_dir, tch::Device::Cpu)
                .with_context(|| format!("importing {}", hf_dir.display()))?;
            write_folder(&out, |d| Ok(model.save(d)?))?;
            report(&hf_dir, &model.vs, &out);
        }
        Command::HfT5 { hf_dir, out } => {
            let t5 = T5Checkpoint::load(&hf_dir, tch::Device::Cpu)
                .with_context(|| format!("importing {}", hf_dir.display()))?;
            write_folder(&out, |d| Ok(t5.save(d)?))?;
            report(&hf_dir, &t5.vs, &out);
        }
    }
    Ok(())
}

fn report(from: &Path, vs: &tch::nn::VarStore, out: &Path) {
    let params: i64 = vs.variables().values().map(|t| t.numel() as i64).sum();
    println!(
        "imported {} ({params} parameters) to {}",
        from.display(),
        out.display()
    );
}
