//! Thumbnails of qualitative examples: the model's input image scaled to a visible size, with a
//! detection's true box (green) and predicted box (red) drawn in.

use image::imageops::FilterType;
use image::{DynamicImage, Rgb, RgbImage};
use palisade_data::loc::NormBox;

/// Images smaller than this (longer side, pixels) are enlarged by a whole factor.
pub const MIN_SIDE: u32 = 160;
/// Images larger than this (longer side) are shrunk to it.
pub const MAX_SIDE: u32 = 320;
/// Colour of the true box.
pub const TRUE_BOX: Rgb<u8> = Rgb([0, 200, 0]);
/// Colour of the predicted box.
pub const PREDICTED_BOX: Rgb<u8> = Rgb([230, 0, 0]);
/// Box outline width in pixels.
const STROKE: u32 = 2;

/// `img` scaled for the report: tiny model inputs (32×32) are enlarged with nearest-neighbour
/// by a whole factor, so each input pixel stays a sharp square; big ones are shrunk smoothly.
pub fn thumbnail(img: &DynamicImage) -> RgbImage {
    let rgb = img.to_rgb8();
    let (w, h) = rgb.dimensions();
    let side = w.max(h).max(1);
    if side < MIN_SIDE {
        let f = MIN_SIDE.div_ceil(side);
        image::imageops::resize(&rgb, w * f, h * f, FilterType::Nearest)
    } else if side > MAX_SIDE {
        let (nw, nh) = ((w * MAX_SIDE / side).max(1), (h * MAX_SIDE / side).max(1));
        image::imageops::resize(&rgb, nw, nh, FilterType::Triangle)
    } else {
        rgb
    }
}

/// Outlines `b` (fractions of the image) in `color`, the stroke inside the box.
pub fn draw_box(img: &mut RgbImage, b: &NormBox, color: Rgb<u8>) {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return;
    }
    let px = |f: f64, n: u32| ((f.clamp(0.0, 1.0) * n as f64).round() as u32).min(n - 1);
    let (x1, x2) = (px(b.x1, w), px(b.x2, w).max(px(b.x1, w)));
    let (y1, y2) = (px(b.y1, h), px(b.y2, h).max(px(b.y1, h)));
    for t in 0..STROKE {
        for x in x1..=x2 {
            img.put_pixel(x, (y1 + t).min(y2), color);
            img.put_pixel(x, y2.saturating_sub(t).max(y1), color);
        }
        for y in y1..=y2 {
            img.put_pixel((x1 + t).min(x2), y, color);
            img.put_pixel(x2.saturating_sub(t).max(x1), y, color);
        }
    }
}

/// The thumbnail of an example: scaled, then the true box and the predicted box on top.
pub fn example_thumbnail(
    img: &DynamicImage,
    true_box: Option<&NormBox>,
    predicted_box: Option<&NormBox>,
) -> RgbImage {
    let mut t = thumbnail(img);
    if let Some(b) = true_box {
        draw_box(&mut t, b, TRUE_BOX);
    }
    if let Some(b) = predicted_box {
        draw_box(&mut t, b, PREDICTED_BOX);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nb(y1: f64, x1: f64, y2: f64, x2: f64) -> NormBox {
        NormBox { y1, x1, y2, x2 }
    }

    #[test]
    fn tiny_images_grow_by_whole_factors_with_sharp_pixels() {
        let mut small = RgbImage::from_pixel(32, 16, Rgb([0, 0, 0]));
        small.put_pixel(1, 0, Rgb([255, 255, 255]));
        let t = thumbnail(&DynamicImage::ImageRgb8(small));
        assert_eq!(t.dimensions(), (160, 80));
        // Input pixel (1, 0) becomes the 5×5 block x 5..10, y 0..5.
        assert_eq!(*t.get_pixel(5, 4), Rgb([255, 255, 255]));
        assert_eq!(*t.get_pixel(10, 0), Rgb([0, 0, 0]));
        let big = DynamicImage::ImageRgb8(RgbImage::new(640, 480));
        assert_eq!(thumbnail(&big).dimensions(), (320, 240));
    }

    #[test]
    fn boxes_are_drawn_on_their_edges_in_their_colours() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(32, 32, Rgb([0, 0, 255])));
        let t = example_thumbnail(
            &img,
            Some(&nb(0.25, 0.25, 0.75, 0.75)),
            Some(&nb(0.5, 0.0, 1.0, 0.5)),
        );
        assert_eq!(t.dimensions(), (160, 160));
        // True box: edges at 40 and 120 px.
        assert_eq!(*t.get_pixel(100, 40), TRUE_BOX, "top edge");
        assert_eq!(*t.get_pixel(120, 60), TRUE_BOX, "right edge");
        assert_eq!(*t.get_pixel(40, 60), TRUE_BOX, "left edge");
        // Predicted box: top edge at 80 px, left edge at 0, bottom edge clamped to 159.
        assert_eq!(*t.get_pixel(20, 80), PREDICTED_BOX, "top edge");
        assert_eq!(*t.get_pixel(0, 120), PREDICTED_BOX, "left edge");
        assert_eq!(*t.get_pixel(30, 159), PREDICTED_BOX, "bottom edge");
        // Inside both boxes and outside them the image is untouched.
        assert_eq!(*t.get_pixel(100, 100), Rgb([0, 0, 255]));
        assert_eq!(*t.get_pixel(150, 10), Rgb([0, 0, 255]));
    }
}
