//! Scaled JPEG decoding through libjpeg-turbo (`csrc/jpeg_scaled.c`): the inverse DCT runs at
//! M/8 of full size — M = 1, 2, 4 or 8, the scales with SIMD code — the smallest M whose output
//! still covers the model's input on both sides, so a large photo is decoded at a fraction of
//! the cost and then resized as usual (only ever shrinking). At full size libjpeg-turbo also
//! decodes faster than the `image` crate's zune-jpeg. See `docs/PERFORMANCE.md` for speed and
//! the pixel difference.

use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void, CStr};

use image::RgbImage;

type AllocFn = unsafe extern "C" fn(*mut c_void, c_uint, c_uint) -> *mut u8;

extern "C" {
    fn palisade_jpeg_decode_rgb(
        data: *const u8,
        len: c_ulong,
        min_width: c_uint,
        min_height: c_uint,
        scales: c_uint,
        alloc: AllocFn,
        ctx: *mut c_void,
        message: *mut c_char,
        message_len: usize,
    ) -> c_int;
}

/// The caller's buffer the C side fills, and the size it got.
struct Output<'a> {
    pixels: &'a mut Vec<u8>,
    width: u32,
    height: u32,
}

/// Sizes the output for a `width`×`height` RGB image and hands its pointer to C.
unsafe extern "C" fn alloc(ctx: *mut c_void, width: c_uint, height: c_uint) -> *mut u8 {
    // SAFETY: `ctx` is the `&mut Output` that `decode_scaled_into` passes, alive for the call.
    let out = unsafe { &mut *ctx.cast::<Output>() };
    let n = width as usize * height as usize * 3;
    // A reused buffer only grows: no fresh pages and no zeroing for images of the same size.
    if out.pixels.len() < n {
        out.pixels.resize(n, 0);
    }
    out.width = width;
    out.height = height;
    out.pixels.as_mut_ptr()
}

/// Decodes JPEG `bytes` to RGB at the smallest scale M/8 among [`SCALES`] whose sides are both
/// at least `min_side` (full size for 0, or when even full size is smaller). Returns the image
/// and M.
pub fn decode_scaled(bytes: &[u8], min_side: u32) -> Result<(RgbImage, u32), String> {
    decode_scaled_among(bytes, min_side, SCALES)
}

/// Scales libjpeg-turbo runs with SIMD (1/8, 1/4, 1/2, 1); the other M/8 use plain C and
/// measured slower than full size.
pub const SCALES: u32 = 0b1000_1011;

/// As [`decode_scaled`], choosing among the scales M/8 whose bit M − 1 is set in `scales`.
pub fn decode_scaled_among(
    bytes: &[u8],
    min_side: u32,
    scales: u32,
) -> Result<(RgbImage, u32), String> {
    let mut pixels = Vec::new();
    let (width, height, m) = decode_scaled_into(bytes, min_side, scales, &mut pixels)?;
    pixels.truncate(width as usize * height as usize * 3);
    let img = RgbImage::from_raw(width, height, pixels)
        .ok_or("libjpeg returned a buffer of the wrong size")?;
    Ok((img, m))
}

/// As [`decode_scaled_among`], into `pixels` (reused between calls: it only grows, and only
/// its first width × height × 3 bytes are the image). Returns (width, height, M).
pub fn decode_scaled_into(
    bytes: &[u8],
    min_side: u32,
    scales: u32,
    pixels: &mut Vec<u8>,
) -> Result<(u32, u32, u32), String> {
    let mut out = Output {
        pixels,
        width: 0,
        height: 0,
    };
    let mut message: [c_char; 200] = [0; 200];
    let len = c_ulong::try_from(bytes.len()).map_err(|e| e.to_string())?;
    // SAFETY: `bytes` and `message` outlive the call and their lengths are passed; `alloc` gets
    // `out` back as its context; errors longjmp only between frames of the C function itself.
    let scale = unsafe {
        palisade_jpeg_decode_rgb(
            bytes.as_ptr(),
            len,
            min_side,
            min_side,
            scales,
            alloc,
            std::ptr::from_mut(&mut out).cast(),
            message.as_mut_ptr(),
            message.len(),
        )
    };
    if scale == 0 {
        // SAFETY: the C side writes a NUL-terminated message (snprintf) into `message`.
        let why = unsafe { CStr::from_ptr(message.as_ptr()) };
        return Err(why.to_string_lossy().into_owned());
    }
    Ok((out.width, out.height, scale as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(img: &RgbImage, quality: u8) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
            .encode_image(img)
            .unwrap();
        out
    }

    fn img_at(bytes: &[u8], side: u32) -> RgbImage {
        decode_scaled(bytes, side).unwrap().0
    }

    fn smooth(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                (x * 255 / w) as u8,
                (y * 255 / h) as u8,
                ((x + y) % 256) as u8,
            ])
        })
    }

    #[test]
    fn picks_the_smallest_scale_covering_the_target() {
        let bytes = jpeg(&smooth(500, 375), 90);
        // 224 on both sides among every M/8: 5/8 gives 313 × 235; 4/8 would give 250 × 188.
        let (img, m) = decode_scaled_among(&bytes, 224, 0xff).unwrap();
        assert_eq!((m, img.dimensions()), (5, (313, 235)));
        // Among the SIMD scales the next one up is full size; 180 takes 1/2.
        assert_eq!(decode_scaled(&bytes, 224).unwrap().1, 8);
        let (img, m) = decode_scaled(&bytes, 180).unwrap();
        assert_eq!((m, img.dimensions()), (4, (250, 188)));
        let (img, m) = decode_scaled(&bytes, 0).unwrap();
        assert_eq!((m, img.dimensions()), (8, (500, 375)));
        // Larger than the image: full size, never upsampled here.
        assert_eq!(
            decode_scaled(&bytes, 1000).unwrap().0.dimensions(),
            (500, 375)
        );
        let (img, m) = decode_scaled(&bytes, 40).unwrap();
        assert_eq!((m, img.dimensions()), (1, (63, 47)));
        // A reused buffer keeps its size; the image is its first bytes.
        let mut buf = vec![7u8; 1_000_000];
        let (w, h, m) = decode_scaled_into(&bytes, 180, SCALES, &mut buf).unwrap();
        assert_eq!((w, h, m, buf.len()), (250, 188, 4, 1_000_000));
        assert_eq!(
            &buf[..w as usize * h as usize * 3],
            img_at(&bytes, 180).as_raw().as_slice()
        );
    }

    #[test]
    fn full_size_matches_the_image_crate_and_bad_input_is_an_error() {
        let src = smooth(64, 48);
        let bytes = jpeg(&src, 95);
        let (ours, _) = decode_scaled(&bytes, 0).unwrap();
        let theirs = crate::image_ops::decode_rgb(&bytes).unwrap();
        let worst = ours
            .as_raw()
            .iter()
            .zip(theirs.as_raw())
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(worst <= 3, "two IDCTs of one file differ by {worst}");
        // Grey images come out as RGB.
        let grey = image::GrayImage::from_pixel(16, 16, image::Luma([90]));
        let mut g = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut g)
            .encode_image(&grey)
            .unwrap();
        let (img, _) = decode_scaled(&g, 0).unwrap();
        assert!(img
            .pixels()
            .all(|p| p.0.iter().all(|&c| c.abs_diff(90) <= 1)));
        // Cut short or not a JPEG: an error with libjpeg's reason, never a crash or exit.
        let e = decode_scaled(&bytes[..bytes.len() / 2], 0).unwrap_err();
        assert!(e.contains("Premature end"), "{e}");
        assert!(!decode_scaled(b"\xff\xd8\xff junk", 0)
            .unwrap_err()
            .is_empty());
    }
}
