//! Images as `data:` URIs, so the report is one file that makes no requests.

use crate::error::{EvalError, Result};
use base64::Engine;
use image::RgbImage;

/// `img` encoded as PNG.
pub fn png_bytes(img: &RgbImage) -> Result<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| EvalError::Invalid(format!("encoding a PNG: {e}")))?;
    Ok(out.into_inner())
}

/// `img` as a `data:image/png;base64,…` URI.
pub fn png_data_uri(img: &RgbImage) -> Result<String> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(png_bytes(img)?);
    Ok(format!("data:image/png;base64,{b64}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_uri_round_trips() {
        let img = RgbImage::from_pixel(3, 2, image::Rgb([10, 20, 30]));
        let uri = png_data_uri(&img).unwrap();
        let b64 = uri.strip_prefix("data:image/png;base64,").unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let back = image::load_from_memory(&bytes).unwrap().to_rgb8();
        assert_eq!(back, img);
    }
}
