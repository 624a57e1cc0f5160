//! Text drawn into images with the public-domain 8×8 bitmap font (`font8x8`): the plots need
//! labels, and a bitmap font compiled into the binary needs no font files, fontconfig or
//! freetype on the machine that builds the report.

use font8x8::{UnicodeFonts, BASIC_FONTS, GREEK_FONTS, LATIN_FONTS};
use image::{Rgb, RgbImage};

/// Width and height of one glyph cell in pixels (at scale 1).
pub const CELL: u32 = 8;

/// The glyph of `c`; characters outside ASCII, Latin-1 and Greek become `?`.
fn glyph(c: char) -> [u8; 8] {
    BASIC_FONTS
        .get(c)
        .or_else(|| LATIN_FONTS.get(c))
        .or_else(|| GREEK_FONTS.get(c))
        .or_else(|| BASIC_FONTS.get('?'))
        .unwrap_or([0; 8])
}

/// Width in pixels of `s` drawn at `scale`.
pub fn width(s: &str, scale: u32) -> u32 {
    s.chars().count() as u32 * CELL * scale
}

/// Draws `s` with its top-left corner at (`x`, `y`); pixels outside the image are skipped.
pub fn draw(img: &mut RgbImage, x: i64, y: i64, s: &str, color: Rgb<u8>, scale: u32) {
    let step = (CELL * scale) as i64;
    for (i, c) in s.chars().enumerate() {
        let rows = glyph(c);
        let x0 = x + i as i64 * step;
        for (row, bits) in rows.iter().enumerate() {
            for col in 0..8 {
                // font8x8 stores the leftmost pixel in the lowest bit.
                if bits & (1 << col) == 0 {
                    continue;
                }
                for dy in 0..scale as i64 {
                    for dx in 0..scale as i64 {
                        put(
                            img,
                            x0 + col * scale as i64 + dx,
                            y + row as i64 * scale as i64 + dy,
                            color,
                        );
                    }
                }
            }
        }
    }
}

/// Sets one pixel if it lies inside the image.
pub fn put(img: &mut RgbImage, x: i64, y: i64, color: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, color);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_glyph_pixels_inside_the_cell_only() {
        let mut img = RgbImage::from_pixel(20, 10, Rgb([255, 255, 255]));
        draw(&mut img, 1, 1, "H", Rgb([0, 0, 0]), 1);
        let dark: Vec<(u32, u32)> = img
            .enumerate_pixels()
            .filter(|(_, _, p)| p.0 == [0, 0, 0])
            .map(|(x, y, _)| (x, y))
            .collect();
        assert!(dark.len() > 10, "H has strokes: {dark:?}");
        assert!(dark
            .iter()
            .all(|&(x, y)| (1..9).contains(&x) && (1..9).contains(&y)));
        assert_eq!(width("abc", 2), 48);
    }
}
