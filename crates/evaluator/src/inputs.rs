//! A batch as model input tensors: one construction for the training losses and the evaluation
//! runs alike, so what a model is trained on and evaluated on cannot drift apart.

use palisade_data::Batch;
use tch::{Device, Kind, Tensor};

/// Pixels `[B, 3, S, S]` (video: `[B, F, 3, S, S]`) and prompt or caption ids `[B, L]` on
/// `device`.
pub fn pixels_and_ids(b: &Batch, device: Device) -> (Tensor, Tensor) {
    let s = b.image_size as i64;
    let shape: Vec<i64> = if b.frames > 1 {
        vec![b.size as i64, b.frames as i64, 3, s, s]
    } else {
        vec![b.size as i64, 3, s, s]
    };
    let pixels = Tensor::from_slice(&b.pixels)
        .view(shape.as_slice())
        .to_device(device);
    let ids = Tensor::from_slice(&b.input_ids)
        .view([b.size as i64, b.text_len as i64])
        .to_device(device);
    (pixels, ids)
}

/// PaLI's inputs: pixels, prompt ids, the prompt's mask (0 on padding) and the target labels
/// (−100 where ignored).
pub struct PaliInputs {
    /// `[B, 3, S, S]` or `[B, F, 3, S, S]`.
    pub pixels: Tensor,
    /// `[B, L]`.
    pub ids: Tensor,
    /// `[B, L]`, 1 on prompt tokens, 0 on padding.
    pub mask: Tensor,
    /// `[B, T]`.
    pub labels: Tensor,
}

impl PaliInputs {
    /// The inputs of `b` on `device`; `pad_id` marks the prompt's padding.
    pub fn new(b: &Batch, pad_id: i64, device: Device) -> PaliInputs {
        let (pixels, ids) = pixels_and_ids(b, device);
        let mask = ids.ne(pad_id).to_kind(Kind::Int64);
        let labels = Tensor::from_slice(&b.target_ids)
            .view([b.size as i64, b.target_len as i64])
            .to_device(device);
        PaliInputs {
            pixels,
            ids,
            mask,
            labels,
        }
    }
}
