//! `palisade pali`: assemble PaLI model folders and export their parts.

use crate::out_folder::write_folder;
use anyhow::{Context, Result};
use palisade_data::TextTokenizer;
use palisade_model::pali::{PaliConfig, PaliModel};
use palisade_model::vit::Resample;
use palisade_model::weights;
use std::path::PathBuf;

/// PaLI model-folder subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Create a PaLI model folder from a preset, optionally initialised from SigLIP and T5 folders.
    Init {
        /// Size preset: `mu`, `tiny` (tests) or `pali3` (SigLIP G/14 + UL2 3B).
        #[arg(long)]
        preset: String,
        /// tokenizer.json; location tokens <loc0000>…<loc1023> are added if missing.
        #[arg(long)]
        tokenizer: PathBuf,
        /// Image resolution (default: the preset's).
        #[arg(long)]
        image_size: Option<usize>,
        /// SigLIP model folder whose ViT (architecture and weights) becomes the image encoder;
        /// its text tower and pooling head are dropped.
        #[arg(long)]
        siglip: Option<PathBuf>,
        /// How the SigLIP position embeddings are resized to `--image-size`.
        #[arg(long, value_enum, default_value = "bilinear")]
        resample: ResampleArg,
        /// T5 folder (`palisade import hf-t5`) initialising the language model.
        #[arg(long)]
        t5: Option<PathBuf>,
        /// Output folder (created; must not exist).
        #[arg(long)]
        out: PathBuf,
        /// Seed of the random initialisation.
        #[arg(long, default_value_t = 0)]
        seed: i64,
    },
    /// Change a PaLI folder's resolution, resampling the position embeddings (224 → 812 → 1064).
    Resize {
        /// PaLI model folder.
        #[arg(long)]
        checkpoint: PathBuf,
        /// New image resolution.
        #[arg(long)]
        image_size: usize,
        /// Interpolation of the position-embedding grid.
        #[arg(long, value_enum, default_value = "bilinear")]
        resample: ResampleArg,
        /// Output folder (created; must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Write the language model as a transformers T5ForConditionalGeneration folder.
    ExportT5 {
        /// PaLI model folder.
        #[arg(long)]
        checkpoint: PathBuf,
        /// Output folder (created; must not exist).
        #[arg(long)]
        out: PathBuf,
    },
}

/// Position-embedding interpolation.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum ResampleArg {
    /// Bilinear (big_vision's resample_posemb).
    Bilinear,
    /// Bicubic.
    Bicubic,
}

impl From<ResampleArg> for Resample {
    fn from(r: ResampleArg) -> Resample {
        match r {
            ResampleArg::Bilinear => Resample::Bilinear,
            ResampleArg::Bicubic => Resample::Bicubic,
        }
    }
}

/// Tokenizer file inside a PaLI folder.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// Runs a `pali` subcommand.
pub fn run(c: Command) -> Result<()> {
    match c {
        Command::Init {
            preset,
            tokenizer,
            image_size,
            siglip,
            resample,
            t5,
            out,
            seed,
        } => {
            let tok = TextTokenizer::load(&tokenizer)?.with_loc_tokens();
            let mut cfg = PaliConfig::preset(&preset, tok.vocab_size())?;
            if let Some(dir) = &siglip {
                // The image encoder's architecture is the SigLIP model's; the preset sizes the rest.
                let s = palisade_model::SiglipConfig::load(&dir.join("config.json"))?;
                cfg.vision_config = palisade_model::SiglipVisionConfig {
                    vision_use_head: false,
                    ..s.vision_config
                };
            }
            if let Some(s) = image_size {
                cfg.vision_config.image_size = s;
            }
            anyhow::ensure!(
                cfg.vision_config.image_size % cfg.vision_config.patch_size == 0,
                "--image-size {} is not a multiple of the patch size {}",
                cfg.vision_config.image_size,
                cfg.vision_config.patch_size
            );
            tch::manual_seed(seed);
            let model = PaliModel::new(&cfg, tch::Device::Cpu)?;
            if let Some(dir) = &siglip {
                model
                    .load_vision_from(dir, resample.into())
                    .with_context(|| format!("--siglip {}", dir.display()))?;
            }
            if let Some(dir) = &t5 {
                model
                    .load_language_model_from(dir)
                    .with_context(|| format!("--t5 {}", dir.display()))?;
            }
            write_folder(&out, |d| {
                model.save(d)?;
                Ok(tok.save(&d.join(TOKENIZER_FILE))?)
            })?;
            println!(
                "wrote PaLI {preset} ({} px, vocabulary {}) to {}",
                cfg.vision_config.image_size,
                tok.vocab_size(),
                out.display()
            );
        }
        Command::Resize {
            checkpoint,
            image_size,
            resample,
            out,
        } => {
            let old = PaliModel::load(&checkpoint, tch::Device::Cpu)?;
            let mut cfg = old.config().clone();
            cfg.vision_config.image_size = image_size;
            anyhow::ensure!(
                image_size % cfg.vision_config.patch_size == 0,
                "--image-size {image_size} is not a multiple of the patch size"
            );
            let new = PaliModel::new(&cfg, tch::Device::Cpu)?;
            let grid = cfg.vision_config.grid() as i64;
            let tensors = weights::named_cpu(&old.vs)
                .into_iter()
                .map(|(n, t)| {
                    if n == "vision_model.embeddings.position_embedding.weight" {
                        palisade_model::vit::resample_posemb(&t, grid, resample.into())
                            .map(|t| (n, t))
                    } else {
                        Ok((n, t))
                    }
                })
                .collect::<palisade_model::Result<Vec<_>>>()?;
            weights::load_tensors_into(&new.vs, tensors, &checkpoint)?;
            write_folder(&out, |d| {
                new.save(d)?;
                copy_tokenizer(&checkpoint, d)
            })?;
            println!(
                "resized {} to {image_size} px ({}×{} patches) in {}",
                checkpoint.display(),
                grid,
                grid,
                out.display()
            );
        }
        Command::ExportT5 { checkpoint, out } => {
            let model = PaliModel::load(&checkpoint, tch::Device::Cpu)?;
            write_folder(&out, |d| {
                let path = d.join("config.json");
                let mut cfg = serde_json::to_value(&model.config().text_config)?;
                cfg["architectures"] = serde_json::json!(["T5ForConditionalGeneration"]);
                std::fs::write(&path, serde_json::to_string_pretty(&cfg)?)
                    .with_context(|| path.display().to_string())?;
                weights::write_atomic(
                    &model.language_model_tensors(),
                    &d.join("model.safetensors"),
                )?;
                copy_tokenizer(&checkpoint, d)
            })?;
            println!(
                "exported the language model of {} to {}",
                checkpoint.display(),
                out.display()
            );
        }
    }
    Ok(())
}

fn copy_tokenizer(from: &std::path::Path, to: &std::path::Path) -> Result<()> {
    let src = from.join(TOKENIZER_FILE);
    if src.exists() {
        std::fs::copy(&src, to.join(TOKENIZER_FILE)).with_context(|| src.display().to_string())?;
    }
    Ok(())
}
