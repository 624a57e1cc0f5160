//! Rasterising scenes: hard-edged shapes on a dark, mildly noisy background.

use image::{Rgb, RgbImage};
use rand::Rng;

use super::scene::{Scene, SceneObject};

/// RGB of each entry of [`super::COLORS`].
const PALETTE: [[u8; 3]; 6] = [
    [220, 40, 40],   // red
    [40, 190, 60],   // green
    [50, 90, 240],   // blue
    [235, 215, 40],  // yellow
    [160, 60, 210],  // purple
    [235, 235, 235], // white
];

/// Per-channel colour jitter of an object, ±.
const COLOR_JITTER: i16 = 12;
/// Per-pixel noise amplitude, ±.
const NOISE: i16 = 6;

/// Draws `scene` into a new `size`×`size` image.
pub(crate) fn render(scene: &Scene, size: u32, rng: &mut impl Rng) -> RgbImage {
    let grey = rng.random_range(10..40u8);
    let tint = [0, 1, 2].map(|_| grey.saturating_add(rng.random_range(0..6u8)));
    let mut img = RgbImage::from_pixel(size, size, Rgb(tint));
    for obj in &scene.objects {
        let base = PALETTE[obj.color % PALETTE.len()];
        let color = base.map(|c| jitter(c, rng.random_range(-COLOR_JITTER..=COLOR_JITTER)));
        fill(&mut img, obj, Rgb(color));
    }
    add_noise(&mut img, rng);
    img
}

fn jitter(c: u8, d: i16) -> u8 {
    (i16::from(c) + d).clamp(0, 255) as u8
}

/// Sets every pixel whose centre lies inside the object's shape.
fn fill(img: &mut RgbImage, o: &SceneObject, color: Rgb<u8>) {
    let (cx, cy) = (o.x + o.w / 2.0, o.y + o.h / 2.0);
    let x_end = ((o.x + o.w).ceil() as u32).min(img.width());
    let y_end = ((o.y + o.h).ceil() as u32).min(img.height());
    for py in (o.y.max(0.0) as u32)..y_end {
        let v = py as f32 + 0.5;
        for px in (o.x.max(0.0) as u32)..x_end {
            let u = px as f32 + 0.5;
            if inside(o, u, v, cx, cy) {
                img.put_pixel(px, py, color);
            }
        }
    }
}

/// Whether point (u, v), within the object's box, is inside its shape.
fn inside(o: &SceneObject, u: f32, v: f32, cx: f32, cy: f32) -> bool {
    match o.shape_name() {
        "circle" => {
            let r = o.w / 2.0;
            (u - cx).powi(2) + (v - cy).powi(2) <= r * r
        }
        "triangle" => {
            // Apex at the top centre, base along the bottom edge.
            let t = (v - o.y) / o.h;
            (u - cx).abs() <= t * o.w / 2.0
        }
        "cross" => (u - cx).abs() <= o.w / 6.0 || (v - cy).abs() <= o.h / 6.0,
        _ => true, // square fills its box
    }
}

fn add_noise(img: &mut RgbImage, rng: &mut impl Rng) {
    let span = (2 * NOISE + 1) as u32;
    for px in img.pixels_mut() {
        // One draw per pixel keeps generation fast; its bytes give three channels.
        let bits = rng.random::<u32>();
        for (c, value) in px.0.iter_mut().enumerate() {
            let d = ((bits >> (8 * c)) & 0xff) % span;
            *value = jitter(*value, d as i16 - NOISE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::scene::Scene;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn one(shape: usize, color: usize) -> Scene {
        Scene {
            objects: vec![SceneObject {
                shape,
                color,
                large: true,
                cell: 4,
                x: 12.0,
                y: 12.0,
                w: 24.0,
                h: 24.0,
            }],
            caption: String::new(),
        }
    }

    fn is_lit(img: &RgbImage, x: u32, y: u32) -> bool {
        img.get_pixel(x, y).0.iter().any(|&c| c > 120)
    }

    #[test]
    fn shapes_cover_expected_pixels() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        // circle: centre lit, box corner dark
        let img = render(&one(0, 0), 48, &mut rng);
        assert!(is_lit(&img, 24, 24) && !is_lit(&img, 12, 12));
        // square: corner lit, outside dark
        let img = render(&one(1, 0), 48, &mut rng);
        assert!(is_lit(&img, 12, 12) && is_lit(&img, 35, 35) && !is_lit(&img, 36, 36));
        // triangle: bottom corners lit, top corners dark
        let img = render(&one(2, 0), 48, &mut rng);
        assert!(is_lit(&img, 12, 35) && is_lit(&img, 35, 35) && !is_lit(&img, 12, 12));
        // cross: arms lit, box corners dark
        let img = render(&one(3, 0), 48, &mut rng);
        assert!(is_lit(&img, 12, 24) && is_lit(&img, 24, 12) && !is_lit(&img, 13, 13));
    }

    #[test]
    fn colour_is_close_to_palette() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for (i, want) in PALETTE.iter().enumerate() {
            let img = render(&one(1, i), 48, &mut rng);
            let got = img.get_pixel(24, 24).0;
            for c in 0..3 {
                let diff = (i16::from(got[c]) - i16::from(want[c])).abs();
                assert!(
                    diff <= COLOR_JITTER + NOISE,
                    "colour {i}: {got:?} vs {want:?}"
                );
            }
        }
    }

    #[test]
    fn background_is_dark() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let img = render(&one(0, 5), 48, &mut rng);
        assert!(img.get_pixel(0, 0).0.iter().all(|&c| c < 60));
    }
}
