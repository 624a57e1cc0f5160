//! Image decoding and conversion to model input tensors.

use image::imageops::{self, FilterType};
use image::RgbImage;

use crate::error::{DataError, Result};

/// Resampling filter of the resize to the model's side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Filter {
    /// Bilinear with antialiasing (PIL's BILINEAR).
    #[default]
    Bilinear,
    /// Bicubic (Catmull-Rom) with antialiasing (PIL's BICUBIC).
    Bicubic,
}

/// Decodes JPEG, PNG or WebP bytes into an 8-bit RGB image.
pub fn decode_rgb(bytes: &[u8]) -> Result<RgbImage> {
    let format = image::guess_format(bytes).map_err(|_| {
        DataError::Image(format!(
            "could not decode {} bytes: not a recognised JPEG, PNG or WebP format (starts {:02x?})",
            bytes.len(),
            &bytes[..bytes.len().min(8)]
        ))
    })?;
    let img = image::load_from_memory_with_format(bytes, format).map_err(|e| {
        DataError::Image(format!(
            "could not decode {} bytes as {format:?}: {e}",
            bytes.len()
        ))
    })?;
    // `into_rgb8` keeps an RGB decode's buffer instead of copying it.
    Ok(img.into_rgb8())
}

/// Whether `bytes` start like a JPEG file.
fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF])
}

/// Decodes an image that will be resized to `side`×`side` (0: keep full size): a JPEG through
/// libjpeg-turbo at the smallest DCT scale (1/8, 1/4, 1/2 or 1) that still covers `side` on both
/// sides (`crate::jpeg`); other formats, and JPEGs libjpeg refuses (CMYK, damaged), as
/// [`decode_rgb`] does, with its error message.
pub fn decode_rgb_for(bytes: &[u8], side: u32) -> Result<RgbImage> {
    if is_jpeg(bytes) {
        if let Ok((img, _)) = crate::jpeg::decode_scaled(bytes, side) {
            return Ok(img);
        }
    }
    decode_rgb(bytes)
}

/// As [`decode_rgb_for`], into `pixels` (reused between images; it only grows and the image is
/// its first width × height × 3 bytes). Returns (width, height).
pub fn decode_rgb_into(bytes: &[u8], side: u32, pixels: &mut Vec<u8>) -> Result<(u32, u32)> {
    if is_jpeg(bytes) {
        if let Ok((w, h, _)) =
            crate::jpeg::decode_scaled_into(bytes, side, crate::jpeg::SCALES, pixels)
        {
            return Ok((w, h));
        }
    }
    let img = decode_rgb(bytes)?;
    let dims = img.dimensions();
    *pixels = img.into_raw();
    Ok(dims)
}

/// Resizes to `size`×`size` (bilinear) and writes CHW values in [-1, 1] into `out`.
///
/// Panics if `out.len() != 3 * size * size`, which is a caller bug.
pub fn to_model_input(img: &RgbImage, size: usize, out: &mut [f32]) {
    to_model_input_with(img, size, out, Filter::Bilinear)
}

/// As [`to_model_input`], with the resampling filter chosen.
///
/// Panics if `out.len() != 3 * size * size`, which is a caller bug.
pub fn to_model_input_with(img: &RgbImage, size: usize, out: &mut [f32], filter: Filter) {
    rgb_to_model_input(img.as_raw(), img.width(), img.height(), size, out, filter)
}

/// As [`to_model_input_with`], from raw RGB bytes (`width` × `height` × 3 of them).
///
/// Panics if `out.len() != 3 * size * size` or `pixels` is too short, which are caller bugs.
pub fn rgb_to_model_input(
    pixels: &[u8],
    width: u32,
    height: u32,
    size: usize,
    out: &mut [f32],
    filter: Filter,
) {
    let plane = size * size;
    assert_eq!(
        out.len(),
        3 * plane,
        "output buffer must hold 3×{size}×{size}"
    );
    let pixels = &pixels[..width as usize * height as usize * 3];
    let side = u32::try_from(size).unwrap_or(u32::MAX);
    // Skip the resampling copy when the image already has the model's size.
    if width == side && height == side {
        normalise(pixels, out);
    } else {
        RESIZED.with(|buf| {
            let mut buf = buf.borrow_mut();
            resize(pixels, width, height, side, filter, &mut buf);
            normalise(&buf, out);
        });
    }
}

/// Interleaved RGB bytes to planar CHW values in [-1, 1].
fn normalise(pixels: &[u8], out: &mut [f32]) {
    let plane = out.len() / 3;
    let (r, rest) = out.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for (((px, r), g), b) in pixels
        .chunks_exact(3)
        .zip(r.iter_mut())
        .zip(g.iter_mut())
        .zip(b.iter_mut())
    {
        *r = f32::from(px[0]) * (1.0 / 127.5) - 1.0;
        *g = f32::from(px[1]) * (1.0 / 127.5) - 1.0;
        *b = f32::from(px[2]) * (1.0 / 127.5) - 1.0;
    }
}

thread_local! {
    /// Each decode thread keeps its resizer (and its scratch buffers) between images.
    static RESIZER: std::cell::RefCell<fast_image_resize::Resizer> = std::cell::RefCell::new(fast_image_resize::Resizer::new());
    /// And its resized image, so no image allocates (or faults in) fresh memory.
    static RESIZED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Resizes `pixels` (`width`×`height` RGB) with antialiasing (the filter widens when shrinking,
/// as PIL's) to `side`², into `out`.
fn resize(pixels: &[u8], width: u32, height: u32, side: u32, filter: Filter, out: &mut Vec<u8>) {
    use fast_image_resize::{
        images::Image, images::ImageRef, FilterType as F, PixelType, ResizeAlg, ResizeOptions,
    };
    let f = match filter {
        Filter::Bilinear => F::Bilinear,
        Filter::Bicubic => F::CatmullRom,
    };
    let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(f));
    let n = side as usize * side as usize * 3;
    out.resize(n, 0);
    let src = ImageRef::new(width, height, pixels, PixelType::U8x3);
    let ok = src.is_ok_and(|src| {
        Image::from_slice_u8(side, side, &mut out[..], PixelType::U8x3).is_ok_and(|mut dst| {
            RESIZER.with(|r| r.borrow_mut().resize(&src, &mut dst, &opts).is_ok())
        })
    });
    if !ok {
        // Unreachable for valid RGB buffers; keep a correct (slower) path rather than panic.
        let img = RgbImage::from_raw(width, height, pixels.to_vec()).unwrap_or_default();
        *out = imageops::resize(&img, side, side, FilterType::Triangle).into_raw();
    }
}

/// Encodes an RGB image as PNG with fast compression.
pub fn encode_png(img: &RgbImage) -> Result<Vec<u8>> {
    use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
    use image::ImageEncoder;
    let mut buf = Vec::new();
    PngEncoder::new_with_quality(&mut buf, CompressionType::Fast, PngFilter::Adaptive)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| DataError::Image(format!("could not encode PNG: {e}")))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    fn sample() -> RgbImage {
        RgbImage::from_fn(8, 6, |x, y| Rgb([(x * 30) as u8, (y * 40) as u8, 255]))
    }

    #[test]
    fn png_round_trip_is_lossless() {
        let img = sample();
        let back = decode_rgb(&encode_png(&img).unwrap()).unwrap();
        assert_eq!(back, img);
    }

    #[test]
    fn decodes_jpeg_and_webp() {
        let img = RgbImage::from_pixel(16, 16, Rgb([200, 40, 40]));
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
            .encode_image(&img)
            .unwrap();
        let back = decode_rgb(&jpeg).unwrap();
        assert_eq!(back.dimensions(), (16, 16));
        assert!(back.get_pixel(8, 8)[0] > 150);

        let mut webp = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
            .encode(img.as_raw(), 16, 16, image::ExtendedColorType::Rgb8)
            .unwrap();
        assert_eq!(decode_rgb(&webp).unwrap(), img);
    }

    #[test]
    fn garbage_names_the_problem() {
        let err = decode_rgb(b"definitely not an image").unwrap_err();
        assert!(err.to_string().contains("could not decode"), "{err}");
        // A valid PNG signature followed by junk is recognised but fails to decode.
        let mut bad = encode_png(&sample()).unwrap();
        bad.truncate(30);
        let err = decode_rgb(&bad).unwrap_err();
        assert!(err.to_string().contains("Png"), "{err}");
    }

    #[test]
    fn model_input_is_chw_and_scaled() {
        let img = RgbImage::from_fn(2, 2, |x, y| {
            if (x, y) == (1, 0) {
                Rgb([255, 0, 0])
            } else {
                Rgb([0, 0, 255])
            }
        });
        let mut out = vec![9.0; 12];
        to_model_input(&img, 2, &mut out);
        // Pixel (x=1, y=0) is index 1 in each plane.
        assert_eq!(&out[0..4], &[-1.0, 1.0, -1.0, -1.0]);
        assert_eq!(&out[4..8], &[-1.0; 4]);
        assert_eq!(&out[8..12], &[1.0, -1.0, 1.0, 1.0]);
    }

    #[test]
    fn jpegs_decode_at_a_reduced_scale_that_still_covers_the_side() {
        let img = RgbImage::from_fn(480, 360, |x, y| Rgb([(x / 2) as u8, (y / 2) as u8, 128]));
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
            .encode_image(&img)
            .unwrap();
        // Half size would be 240 × 180, short of 224: full size; for 160 half size covers it.
        assert_eq!(decode_rgb_for(&jpeg, 224).unwrap().dimensions(), (480, 360));
        assert_eq!(decode_rgb_for(&jpeg, 160).unwrap().dimensions(), (240, 180));
        assert_eq!(decode_rgb_for(&jpeg, 0).unwrap().dimensions(), (480, 360));
        // The model input barely differs from a full decode's (in 0..255 levels).
        let (mut full, mut scaled) = (vec![0.0; 3 * 64 * 64], vec![0.0; 3 * 64 * 64]);
        to_model_input(&decode_rgb(&jpeg).unwrap(), 64, &mut full);
        let mut buf = vec![0; 10];
        let (w, h) = decode_rgb_into(&jpeg, 64, &mut buf).unwrap();
        assert_eq!((w, h), (120, 90));
        rgb_to_model_input(&buf, w, h, 64, &mut scaled, Filter::Bilinear);
        let mean = full
            .iter()
            .zip(&scaled)
            .map(|(a, b)| f64::from((a - b).abs()))
            .sum::<f64>()
            / full.len() as f64
            * 127.5;
        assert!(mean < 1.5, "mean difference {mean} levels");
        // Other formats decode as before, into the same reused buffer.
        let png = encode_png(&sample()).unwrap();
        assert_eq!(decode_rgb_into(&png, 64, &mut buf).unwrap(), (8, 6));
        assert_eq!(&buf[..8 * 6 * 3], sample().as_raw().as_slice());
        // What libjpeg refuses goes to the image crate, whose reason is reported.
        let e = decode_rgb_for(b"\xff\xd8\xff not really", 64).unwrap_err();
        assert!(e.to_string().contains("could not decode"), "{e}");
    }

    #[test]
    fn model_input_resizes() {
        let img = RgbImage::from_pixel(10, 30, Rgb([255, 128, 0]));
        let mut out = vec![0.0; 3 * 4 * 4];
        to_model_input(&img, 4, &mut out);
        assert!(out[..16].iter().all(|v| (*v - 1.0).abs() < 1e-6));
        assert!(out[16..32].iter().all(|v| v.abs() < 0.01));
        assert!(out[32..].iter().all(|v| (*v + 1.0).abs() < 1e-6));
    }
}
