//! Model folders made by commands (`palisade import`, `palisade pali`): transformers
//! checkpoints imported, PaLI folders assembled from SigLIP and T5 parts, resized, and their
//! language model exported. Each folder is written whole into a new `out`.

use crate::error::{Result, TrainerError};
use palisade_data::TextTokenizer;
use palisade_model::folder::{copy_tokenizer, TOKENIZER_FILE};
use palisade_model::pali::{PaliInit, PaliModel};
use palisade_model::siglip::vit::Resample;
use palisade_model::t5::T5Checkpoint;
use palisade_model::weights::MAX_SHARD_BYTES;
use palisade_model::{SiglipModel, SiglipVision};
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
/// A `SiglipVisionModel` folder is imported as a vision-only folder.
pub fn import_siglip(hf_dir: &Path, out: &Path) -> Result<Written> {
    let kind = palisade_model::model_type(hf_dir).map_err(|e| importing(hf_dir, e))?;
    if kind == "siglip_vision_model" {
        let m = SiglipVision::load(hf_dir, tch::Device::Cpu).map_err(|e| importing(hf_dir, e))?;
        new_folder(out, |d| Ok(m.save(d)?))?;
        return Ok(imported(hf_dir, &m.vs, out));
    }
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

/// The tokenizer a T5 folder ships: `tokenizer.json`, else SentencePiece's `spiece.model`.
pub fn t5_tokenizer(t5_dir: &Path) -> Result<std::path::PathBuf> {
    let json = t5_dir.join(TOKENIZER_FILE);
    let spm = t5_dir.join("spiece.model");
    match (json.exists(), spm.exists()) {
        (true, _) => Ok(json),
        (false, true) => Ok(spm),
        _ => Err(TrainerError::Config(format!(
            "{}: has no {TOKENIZER_FILE} or spiece.model; name one with --tokenizer",
            t5_dir.display()
        ))),
    }
}

/// A new PaLI folder at `out`: `init`, its vocabulary that of `tokenizer` (default: the T5
/// folder's) with the location tokens <loc0000>…<loc1023> added, and that tokenizer. The
/// T5's embedding rows of the tokenizer's own tokens are kept; the new tokens get new rows.
pub fn pali_init(init: PaliInit, tokenizer: Option<&Path>, out: &Path) -> Result<Written> {
    let what = init.preset.unwrap_or("from pretrained parts");
    let path = match (tokenizer, init.t5) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(t5)) => t5_tokenizer(t5)?,
        (None, None) => {
            return Err(TrainerError::Config(
                "--tokenizer: needed when no --t5 folder brings its own".into(),
            ))
        }
    };
    let base = TextTokenizer::load(&path)?;
    let pretrained_vocab = base.vocab_size();
    let tok = base.with_loc_tokens();
    let init = PaliInit {
        vocab_size: tok.vocab_size(),
        pretrained_vocab: init.t5.map(|_| pretrained_vocab),
        ..init
    };
    // Errors name the SigLIP or T5 file they come from.
    let model = PaliModel::assemble(&init)?;
    new_folder(out, |d| {
        model.save(d)?;
        Ok(tok.save(&d.join(TOKENIZER_FILE))?)
    })?;
    Ok(Written(format!(
        "wrote PaLI {what} ({} px, vocabulary {}: {} of {} new, {} parameters) to {}",
        model.config().vision_config.image_size,
        tok.vocab_size(),
        tok.vocab_size().saturating_sub(pretrained_vocab),
        path.display(),
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
        model.save_language_model(d, MAX_SHARD_BYTES)?;
        Ok(copy_tokenizer(checkpoint, d)?)
    })?;
    Ok(Written(format!(
        "exported the language model of {} to {}",
        checkpoint.display(),
        out.display()
    )))
}

/// The variables of `vs` into `dir` as transformers stores them (sharded over `max_shard_bytes`).
fn save_weights(vs: &tch::nn::VarStore, dir: &Path, max_shard_bytes: u64) -> Result<()> {
    let tensors = palisade_model::weights::named_cpu(vs);
    palisade_model::weights::save_sharded(&tensors, dir, max_shard_bytes)?;
    Ok(())
}

/// A model folder as transformers' classes load it, in `out`: a SigLIP folder as a
/// `SiglipModel` (or `SiglipVisionModel`) folder; a PaLI folder as `vision/` (a
/// `SiglipVisionModel`), `language/` (a `T5ForConditionalGeneration`), `projector.safetensors`
/// and its tokenizer. Weights over `max_shard_bytes` are written in shards with an index.
pub fn export_hf(checkpoint: &Path, out: &Path, max_shard_bytes: u64) -> Result<Written> {
    let kind = palisade_model::model_type(checkpoint)?;
    match kind.as_str() {
        "siglip" => {
            let m = SiglipModel::load(checkpoint, tch::Device::Cpu)?;
            new_folder(out, |d| {
                m.config().save(&d.join(palisade_model::folder::CONFIG_FILE))?;
                save_weights(&m.vs, d, max_shard_bytes)?;
                Ok(copy_tokenizer(checkpoint, d)?)
            })?;
        }
        "siglip_vision_model" => {
            let m = SiglipVision::load(checkpoint, tch::Device::Cpu)?;
            new_folder(out, |d| {
                m.config().save(&d.join(palisade_model::folder::CONFIG_FILE))?;
                save_weights(&m.vs, d, max_shard_bytes)
            })?;
        }
        "pali" => {
            let m = PaliModel::load(checkpoint, tch::Device::Cpu)?;
            new_folder(out, |d| {
                for sub in ["vision", "language"] {
                    std::fs::create_dir_all(d.join(sub)).map_err(crate::error::io_at(d.join(sub)))?;
                }
                m.save_vision_model(&d.join("vision"), max_shard_bytes)?;
                m.save_language_model(&d.join("language"), max_shard_bytes)?;
                m.save_projector(&d.join("projector.safetensors"))?;
                copy_tokenizer(checkpoint, &d.join("language"))?;
                Ok(copy_tokenizer(checkpoint, d)?)
            })?;
        }
        other => {
            return Err(TrainerError::Config(format!(
                "{}: model_type {other:?} has no transformers export (siglip, siglip_vision_model, pali)",
                checkpoint.display()
            )))
        }
    }
    Ok(Written(format!(
        "exported {} ({kind}) to {}",
        checkpoint.display(),
        out.display()
    )))
}
