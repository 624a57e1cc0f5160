//! Image decoding and conversion to model input tensors.

use image::imageops::{self, FilterType};
use image::RgbImage;

use crate::error::{DataError, Result};

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
    Ok(img.to_rgb8())
}

/// Resizes to `size`×`size` (bilinear) and writes CHW values in [-1, 1] into `out`.
///
/// Panics if `out.len() != 3 * size * size`, which is a caller bug.
pub fn to_model_input(img: &RgbImage, size: usize, out: &mut [f32]) {
    to_model_input_with(img, size, out, crate::augment::Filter::Bilinear)
}

/// As [`to_model_input`], with the resampling filter chosen.
///
/// Panics if `out.len() != 3 * size * size`, which is a caller bug.
pub fn to_model_input_with(
    img: &RgbImage,
    size: usize,
    out: &mut [f32],
    filter: crate::augment::Filter,
) {
    let plane = size * size;
    assert_eq!(
        out.len(),
        3 * plane,
        "output buffer must hold 3×{size}×{size}"
    );
    let side = u32::try_from(size).unwrap_or(u32::MAX);
    // Skip the resampling copy when the image already has the model's size.
    let resized;
    let pixels: &[u8] = if img.width() == side && img.height() == side {
        img.as_raw()
    } else {
        resized = resize(img, side, filter);
        &resized
    };
    let (r, rest) = out.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for (i, px) in pixels.chunks_exact(3).enumerate() {
        r[i] = f32::from(px[0]) * (1.0 / 127.5) - 1.0;
        g[i] = f32::from(px[1]) * (1.0 / 127.5) - 1.0;
        b[i] = f32::from(px[2]) * (1.0 / 127.5) - 1.0;
    }
}

thread_local! {
    /// Each decode thread keeps its resizer (and its scratch buffers) between images.
    static RESIZER: std::cell::RefCell<fast_image_resize::Resizer> = std::cell::RefCell::new(fast_image_resize::Resizer::new());
}

/// Resize with antialiasing (the filter widens when shrinking, as PIL's), to `side`².
fn resize(img: &RgbImage, side: u32, filter: crate::augment::Filter) -> Vec<u8> {
    use fast_image_resize::{
        images::Image, images::ImageRef, FilterType as F, PixelType, ResizeAlg, ResizeOptions,
    };
    let f = match filter {
        crate::augment::Filter::Bilinear => F::Bilinear,
        crate::augment::Filter::Bicubic => F::CatmullRom,
    };
    let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(f));
    let src = ImageRef::new(img.width(), img.height(), img.as_raw(), PixelType::U8x3);
    let mut dst = Image::new(side, side, PixelType::U8x3);
    let ok =
        src.is_ok_and(|src| RESIZER.with(|r| r.borrow_mut().resize(&src, &mut dst, &opts).is_ok()));
    if ok {
        dst.into_vec()
    } else {
        // Unreachable for valid RGB buffers; keep a correct (slower) path rather than panic.
        imageops::resize(img, side, side, FilterType::Triangle).into_raw()
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
    fn model_input_resizes() {
        let img = RgbImage::from_pixel(10, 30, Rgb([255, 128, 0]));
        let mut out = vec![0.0; 3 * 4 * 4];
        to_model_input(&img, 4, &mut out);
        assert!(out[..16].iter().all(|v| (*v - 1.0).abs() < 1e-6));
        assert!(out[16..32].iter().all(|v| v.abs() < 0.01));
        assert!(out[32..].iter().all(|v| (*v + 1.0).abs() < 1e-6));
    }
}
