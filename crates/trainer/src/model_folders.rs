//! Model folders made by commands (`palisade import`, `palisade pali`): transformers
//! checkpoints imported, PaLI folders assembled from SigLIP and T5 parts, resized, and their
//! language model exported. Each folder is written whole into a new `out`.

use crate::error::{Result, TrainerError};
use palisade_data::TextTokenizer;
use palisade_model::folder::{copy_tokenizer, TOKENIZER_FILE};
use palisade_model::pali::{PaliInit, PaliModel};
use palisade_model::siglip::vit::Resample;
use palisade_model::t5::T5Checkpoint;
use palisade_model::SiglipModel;
use std::path::Path;

/// What a command wrote, as a sentence for its user.
#[derive(Debug, Clone, PartialEq)]
pub struct Written(pub String);

impl std::fmt::Display for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Fills the new folder `out` with `fill`; an existing `out` is refused, untouched.
fn new_folder(out: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if out.exists() {
        return Err(TrainerError::Config(format!(
            "{}: already exists; choose a new --out folder",
            out.display()
        )));
    }
    palisade_files::write_dir(out, fill)
}

fn parameters(vs: &tch::nn::VarStore) -> i64 {
    vs.variables().values().map(|t| t.numel() as i64).sum()
}

/// Imports a transformers `SiglipModel` folder into `out`.
pub fn import_siglip(hf_dir: &Path, out: &Path) -> Result<Written> {
    let model = SiglipModel::load(hf_dir, tch::Device::Cpu).map_err(|e| importing(hf_dir, e))?;
    new_folder(out, |d| Ok(model.save(d)?))?;
    Ok(imported(hf_dir, &model.vs, out))
}

/// Imports a transformers `T5ForConditionalGeneration` folder (T5 v1.0, v1.1, UL2) into `out`.
pub fn import_t5(hf_dir: &Path, out: &Path) -> Result<Written> {
    let t5 = T5Checkpoint::load(hf_dir, tch::Device::Cpu).map_err(|e| importing(hf_dir, e))?;
    new_folder(out, |d| Ok(t5.save(d)?))?;
    Ok(imported(hf_dir, &t5.vs, out))
}

fn imported(from: &Path, vs: &tch::nn::VarStore, out: &Path) -> Written {
    Written(format!(
        "imported {} ({} parameters) to {}",
        from.display(),
        parameters(vs),
        out.display()
    ))
}

fn importing(dir: &Path, e: palisade_model::ModelError) -> TrainerError {
    TrainerError::Config(format!("importing {}: {e}", dir.display()))
}

/// A new PaLI folder at `out`: `init` (its vocabulary taken from `tokenizer`, to which the
/// location tokens <loc0000>…<loc1023> are added if missing) and that tokenizer.
pub fn pali_init(init: PaliInit, tokenizer: &Path, out: &Path) -> Result<Written> {
    let preset = init.preset;
    let tok = TextTokenizer::load(tokenizer)?.with_loc_tokens();
    let init = PaliInit {
        vocab_size: tok.vocab_size(),
        ..init
    };
    // Errors name the SigLIP or T5 file they come from.
    let model = PaliModel::assemble(&init)?;
    new_folder(out, |d| {
        model.save(d)?;
        Ok(tok.save(&d.join(TOKENIZER_FILE))?)
    })?;
    Ok(Written(format!(
        "wrote PaLI {preset} ({} px, vocabulary {}, {} parameters) to {}",
        model.config().vision_config.image_size,
        tok.vocab_size(),
        parameters(&model.vs),
        out.display()
    )))
}

/// The PaLI folder `checkpoint` at `image_size` pixels (position embeddings resampled by
/// `resample`) in the new folder `out`, its tokenizer copied.
pub fn pali_resize(
    checkpoint: &Path,
    image_size: usize,
    resample: Resample,
    out: &Path,
) -> Result<Written> {
    let model = PaliModel::load(checkpoint, tch::Device::Cpu)?.resized(image_size, resample)?;
    new_folder(out, |d| {
        model.save(d)?;
        Ok(copy_tokenizer(checkpoint, d)?)
    })?;
    let grid = model.config().vision_config.grid();
    Ok(Written(format!(
        "resized {} to {image_size} px ({grid}×{grid} patches) in {}",
        checkpoint.display(),
        out.display()
    )))
}

/// The language model of the PaLI folder `checkpoint` as a transformers
/// `T5ForConditionalGeneration` folder at `out`, its tokenizer copied.
pub fn pali_export_t5(checkpoint: &Path, out: &Path) -> Result<Written> {
    let model = PaliModel::load(checkpoint, tch::Device::Cpu)?;
    new_folder(out, |d| {
        model.save_language_model(d)?;
        Ok(copy_tokenizer(checkpoint, d)?)
    })?;
    Ok(Written(format!(
        "exported the language model of {} to {}",
        checkpoint.display(),
        out.display()
    )))
}
