//! `palisade pali`: assemble PaLI model folders and export their parts.

use anyhow::Result;
use palisade_model::pali::PaliInit;
use palisade_model::siglip::vit::Resample;
use palisade_trainer::model_folders;
use std::path::PathBuf;

/// PaLI model-folder subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Create a PaLI model folder from pretrained SigLIP and T5 folders (hub-shaped or
    /// palisade's), a preset sizing what they do not bring.
    Init {
        /// Size preset for the parts no folder brings: `mu`, `tiny` (tests) or `pali3`.
        #[arg(long, required_unless_present_all = ["siglip", "t5"])]
        preset: Option<String>,
        /// tokenizer.json or SentencePiece .model (default: the --t5 folder's); location
        /// tokens <loc0000>…<loc1023> are added if missing.
        #[arg(long, required_unless_present = "t5")]
        tokenizer: Option<PathBuf>,
        /// Image resolution (default: the preset's).
        #[arg(long)]
        image_size: Option<usize>,
        /// SigLIP model folder whose ViT (architecture and weights) becomes the image encoder;
        /// its text tower and pooling head are dropped.
        #[arg(long)]
        siglip: Option<PathBuf>,
        /// How the SigLIP position embeddings are resized to `--image-size`: bilinear or bicubic.
        #[arg(long, default_value = "bilinear")]
        resample: Resample,
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
        /// Interpolation of the position-embedding grid: bilinear or bicubic.
        #[arg(long, default_value = "bilinear")]
        resample: Resample,
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

/// Runs a `pali` subcommand and says what it wrote.
pub fn run(c: Command) -> Result<()> {
    let written = match c {
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
            let init = PaliInit {
                preset: preset.as_deref(),
                vocab_size: 0,          // the tokenizer's, location tokens included
                pretrained_vocab: None, // the T5 tokenizer's
                image_size,
                siglip: siglip.as_deref(),
                resample,
                t5: t5.as_deref(),
                seed,
            };
            model_folders::pali_init(init, tokenizer.as_deref(), &out)?
        }
        Command::Resize {
            checkpoint,
            image_size,
            resample,
            out,
        } => model_folders::pali_resize(&checkpoint, image_size, resample, &out)?,
        Command::ExportT5 { checkpoint, out } => model_folders::pali_export_t5(&checkpoint, &out)?,
    };
    println!("{written}");
    Ok(())
}
