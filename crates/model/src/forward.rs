//! A model folder of any family palisade imports run on named input tensors, writing named
//! outputs (`palisade forward`): what parity tests compare with transformers.

use crate::error::{ModelError, Result};
use crate::pali::PaliModel;
use crate::siglip::{SiglipModel, SiglipVision};
use crate::t5::{T5Checkpoint, MODEL_TYPES};
use crate::{folder, weights};
use std::path::Path;
use tch::Tensor;

/// Runs the model in `checkpoint` on the tensors of the safetensors file `inputs` and writes its
/// outputs to `out`; returns each output's name and shape.
///
/// SigLIP reads `pixel_values` [B,3,S,S] and/or `input_ids` [B,L] and writes `image_embeds`,
/// `text_embeds`, `logits_per_image`, `logits_per_text`; a vision-only SigLIP reads
/// `pixel_values` and writes `last_hidden_state` (and `pooler_output` with its head); T5 reads
/// `input_ids`, `decoder_input_ids` and optionally `attention_mask`, and writes `logits`; PaLI
/// reads those and `pixel_values` (video [B,F,3,S,S]) and writes `logits`.
pub fn forward(checkpoint: &Path, inputs: &Path, out: &Path) -> Result<Vec<(String, Vec<i64>)>> {
    let kind = folder::model_type(checkpoint)?;
    let mut given = weights::read(inputs)?;
    let mut take = |name: &str| {
        given
            .iter()
            .position(|(n, _)| n == name)
            .map(|i| given.swap_remove(i).1)
    };
    let outputs = match kind.as_str() {
        "siglip" => siglip(checkpoint, inputs, &mut take)?,
        "siglip_vision_model" => siglip_vision(checkpoint, inputs, &mut take)?,
        "pali" => pali(checkpoint, inputs, &mut take)?,
        t if MODEL_TYPES.contains(&t) => t5(checkpoint, inputs, &mut take)?,
        other => {
            return Err(ModelError::Config(format!(
                "{}: model_type {other:?} is not served by forward (siglip, siglip_vision_model, {}, pali)",
                checkpoint.display(),
                MODEL_TYPES.join(", ")
            )))
        }
    };
    let shapes = outputs.iter().map(|(n, t)| (n.clone(), t.size())).collect();
    weights::write_atomic(&outputs, out)?;
    Ok(shapes)
}

type Take<'a> = dyn FnMut(&str) -> Option<Tensor> + 'a;

fn siglip(checkpoint: &Path, inputs: &Path, take: &mut Take) -> Result<Vec<(String, Tensor)>> {
    let model = SiglipModel::load(checkpoint, tch::Device::Cpu)?;
    let pixels = take("pixel_values");
    let ids = take("input_ids");
    if pixels.is_none() && ids.is_none() {
        return Err(ModelError::Input {
            name: inputs.display().to_string(),
            msg: "holds neither pixel_values nor input_ids".into(),
        });
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
    Ok(tensors)
}

/// The input `name`, or an error naming the inputs file.
fn need(take: &mut Take, inputs: &Path, name: &str) -> Result<Tensor> {
    take(name).ok_or_else(|| ModelError::Input {
        name: inputs.display().to_string(),
        msg: format!("has no {name}"),
    })
}

fn siglip_vision(
    checkpoint: &Path,
    inputs: &Path,
    take: &mut Take,
) -> Result<Vec<(String, Tensor)>> {
    let model = SiglipVision::load(checkpoint, tch::Device::Cpu)?;
    let pixels = need(take, inputs, "pixel_values")?;
    let out = tch::no_grad(|| model.tower.forward(&pixels))?;
    let mut tensors = vec![("last_hidden_state".to_string(), out.tokens.contiguous())];
    if let Some(p) = out.pooled {
        tensors.push(("pooler_output".to_string(), p.contiguous()));
    }
    Ok(tensors)
}

fn t5(checkpoint: &Path, inputs: &Path, take: &mut Take) -> Result<Vec<(String, Tensor)>> {
    let t5 = T5Checkpoint::load(checkpoint, tch::Device::Cpu)?;
    let ids = need(take, inputs, "input_ids")?;
    let dec = need(take, inputs, "decoder_input_ids")?;
    t5.model.check_ids("input_ids", &ids)?;
    t5.model.check_ids("decoder_input_ids", &dec)?;
    let mask = take("attention_mask").unwrap_or_else(|| ids.ones_like());
    let logits = tch::no_grad(|| t5.model.forward(&ids, &mask, &dec));
    Ok(vec![("logits".to_string(), logits.contiguous())])
}

fn pali(checkpoint: &Path, inputs: &Path, take: &mut Take) -> Result<Vec<(String, Tensor)>> {
    let model = PaliModel::load(checkpoint, tch::Device::Cpu)?;
    let pixels = need(take, inputs, "pixel_values")?;
    let ids = need(take, inputs, "input_ids")?;
    let dec = need(take, inputs, "decoder_input_ids")?;
    let mask = take("attention_mask").unwrap_or_else(|| ids.ones_like());
    let logits = tch::no_grad(|| model.forward(&pixels, &ids, &mask, &dec))?;
    Ok(vec![("logits".to_string(), logits.contiguous())])
}
