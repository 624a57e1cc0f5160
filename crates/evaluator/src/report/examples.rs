//! Qualitative examples: the model's input image of a few evaluated rows, saved as PNG files
//! for the report (the first frame of a video clip).

use super::run_folder::EXAMPLES_DIR;
use crate::error::{EvalError, Result};
use palisade_data::Batch;
use std::path::Path;

/// One row's input image as the model saw it, as 8-bit RGB.
#[derive(Debug, Clone)]
pub struct Thumbnail {
    /// Row id.
    pub id: String,
    /// Side in pixels.
    pub size: usize,
    /// Frames of the clip (1 for an image); `rgb` holds the first.
    pub frames: usize,
    /// Interleaved RGB, `size × size × 3`.
    pub rgb: Vec<u8>,
}

impl Thumbnail {
    /// Row `i` of batch `b`, mapped back from [-1, 1] to 0..=255.
    pub fn from_batch(b: &Batch, i: usize) -> Thumbnail {
        let s = b.image_size;
        let plane = s * s;
        let start = i * b.frames * 3 * plane;
        let px = &b.pixels[start..start + 3 * plane];
        let mut rgb = vec![0u8; 3 * plane];
        for p in 0..plane {
            for c in 0..3 {
                let v = (px[c * plane + p] + 1.0) * 127.5;
                rgb[3 * p + c] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
        Thumbnail {
            id: b.ids[i].clone(),
            size: s,
            frames: b.frames,
            rgb,
        }
    }
}

/// Writes `th` as `examples/<task>-<k>.png` under `report_dir`; returns that relative path.
pub fn write_thumbnail(report_dir: &Path, task: &str, k: usize, th: &Thumbnail) -> Result<String> {
    let dir = report_dir.join(EXAMPLES_DIR);
    std::fs::create_dir_all(&dir).map_err(|source| EvalError::Io {
        path: dir.clone(),
        source,
    })?;
    let rel = format!("{EXAMPLES_DIR}/{task}-{k}.png");
    let path = report_dir.join(&rel);
    let img = image::RgbImage::from_raw(th.size as u32, th.size as u32, th.rgb.clone())
        .ok_or_else(|| EvalError::Invalid(format!("example {}: wrong pixel count", th.id)))?;
    img.save_with_format(&path, image::ImageFormat::Png)
        .map_err(|e| EvalError::Invalid(format!("{}: cannot write PNG: {e}", path.display())))?;
    Ok(rel)
}
