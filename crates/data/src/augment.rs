//! Training-time image augmentation: random resized crop (torchvision's / Inception's: an area
//! fraction and an aspect ratio drawn uniformly, log-uniformly for the ratio; ten tries, then the
//! centred largest crop), horizontal flip, and the resampling filter. Each sample's draw is keyed
//! by (seed, epoch, row id), so runs and resumed runs augment identically.

use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use crate::image_ops::Filter;

/// What to do to training images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Augment {
    /// Random resized crop: range of the crop's area as a fraction of the image (e.g. [0.08, 1]).
    #[serde(default)]
    pub crop_scale: Option<[f64; 2]>,
    /// Range of the crop's aspect ratio (width / height).
    #[serde(default = "default_ratio")]
    pub crop_ratio: [f64; 2],
    /// Flip horizontally with probability ½.
    #[serde(default)]
    pub flip: bool,
    /// Resampling filter.
    #[serde(default)]
    pub resize: Filter,
}

fn default_ratio() -> [f64; 2] {
    [3.0 / 4.0, 4.0 / 3.0]
}

impl Default for Augment {
    fn default() -> Self {
        Augment {
            crop_scale: None,
            crop_ratio: default_ratio(),
            flip: false,
            resize: Filter::Bilinear,
        }
    }
}

impl Augment {
    /// Checks the ranges; messages name the key.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if let Some([lo, hi]) = self.crop_scale {
            if !(0.0 < lo && lo <= hi && hi <= 1.0) {
                return Err(format!(
                    "crop_scale [{lo}, {hi}] must satisfy 0 < low ≤ high ≤ 1"
                ));
            }
        }
        let [lo, hi] = self.crop_ratio;
        if !(0.0 < lo && lo <= hi) {
            return Err(format!(
                "crop_ratio [{lo}, {hi}] must satisfy 0 < low ≤ high"
            ));
        }
        Ok(())
    }

    /// The augmented image of row `id` in `epoch`.
    pub fn apply(&self, img: &RgbImage, seed: u64, epoch: u64, id: &str) -> RgbImage {
        self.draw(img.width(), img.height(), seed, epoch, id)
            .apply(img)
    }

    /// The random choices for row `id` in `epoch`, for an image of `width`×`height`: drawn once
    /// per row, so every frame of a video clip gets the same crop and flip.
    pub fn draw(&self, width: u32, height: u32, seed: u64, epoch: u64, id: &str) -> Draw {
        let mut key = [0u8; 32];
        let h = crate::row_id::id_hash(id);
        for (chunk, word) in key.chunks_exact_mut(8).zip([seed, epoch, h, 0x6175_676d]) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        let mut rng = ChaCha8Rng::from_seed(key);
        let crop = self
            .crop_scale
            .map(|scale| crop_box(width, height, scale, self.crop_ratio, &mut rng));
        let flip = self.flip && rng.random_bool(0.5);
        Draw { crop, flip }
    }
}

/// One row's augmentation: a crop box (x, y, width, height) and whether to flip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Draw {
    /// Crop box in pixels of the image it was drawn for.
    pub crop: Option<(u32, u32, u32, u32)>,
    /// Mirror left–right.
    pub flip: bool,
}

impl Draw {
    /// Applies the crop (clamped to `img`, should a frame be smaller than the first) and flip.
    pub fn apply(&self, img: &RgbImage) -> RgbImage {
        let mut out = match self.crop {
            Some((x, y, w, h)) => {
                let x = x.min(img.width().saturating_sub(1));
                let y = y.min(img.height().saturating_sub(1));
                let w = w.min(img.width() - x).max(1);
                let h = h.min(img.height() - y).max(1);
                image::imageops::crop_imm(img, x, y, w, h).to_image()
            }
            None => img.clone(),
        };
        if self.flip {
            image::imageops::flip_horizontal_in_place(&mut out);
        }
        out
    }
}

/// torchvision's `RandomResizedCrop.get_params`.
fn crop_box(
    width: u32,
    height: u32,
    scale: [f64; 2],
    ratio: [f64; 2],
    rng: &mut impl Rng,
) -> (u32, u32, u32, u32) {
    let (wf, hf) = (f64::from(width), f64::from(height));
    let area = wf * hf;
    let (lr0, lr1) = (ratio[0].ln(), ratio[1].ln());
    for _ in 0..10 {
        let target = area * rng.random_range(scale[0]..=scale[1]);
        let r = (if lr1 > lr0 {
            rng.random_range(lr0..lr1)
        } else {
            lr0
        })
        .exp();
        let w = (target * r).sqrt().round();
        let h = (target / r).sqrt().round();
        if w >= 1.0 && h >= 1.0 && w <= wf && h <= hf {
            let (w, h) = (w as u32, h as u32);
            return (
                rng.random_range(0..=width - w),
                rng.random_range(0..=height - h),
                w,
                h,
            );
        }
    }
    // Fallback: the centred crop closest to the ratio range.
    let in_ratio = wf / hf;
    let (w, h) = if in_ratio < ratio[0] {
        (wf, (wf / ratio[0]).round())
    } else if in_ratio > ratio[1] {
        ((hf * ratio[1]).round(), hf)
    } else {
        (wf, hf)
    };
    let (w, h) = (w.max(1.0) as u32, h.max(1.0) as u32);
    ((width - w) / 2, (height - h) / 2, w, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_stay_inside_and_draws_are_keyed() {
        let img = RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8, y as u8, 0]));
        let a = Augment {
            crop_scale: Some([0.2, 0.5]),
            flip: true,
            ..Default::default()
        };
        a.validate().unwrap();
        let first = a.apply(&img, 1, 0, "row-1");
        assert_eq!(first, a.apply(&img, 1, 0, "row-1"), "same key, same draw");
        assert!(first.width() <= 40 && first.height() <= 30);
        let area = f64::from(first.width() * first.height()) / 1200.0;
        assert!((0.15..=0.56).contains(&area), "{area}");
        let others: Vec<RgbImage> = (0..8).map(|e| a.apply(&img, 1, e, "row-1")).collect();
        assert!(others.iter().any(|o| *o != first), "epochs draw anew");
        // Flipping mirrors columns.
        let flip = Augment {
            flip: true,
            ..Default::default()
        };
        let flipped = (0..16)
            .map(|e| flip.apply(&img, 3, e, "r"))
            .find(|o| o != &img)
            .unwrap();
        assert_eq!(flipped.get_pixel(0, 5)[0], 39);
        assert!(Augment {
            crop_scale: Some([0.6, 0.2]),
            ..Default::default()
        }
        .validate()
        .is_err());
    }
}
