//! Reading source images as their original bytes, checking only that they are an image format
//! the loader decodes.

use std::path::Path;

/// Reads `path` whole; the error names the image and why it is unusable.
pub(crate) fn read_image(path: &Path) -> std::result::Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("image {}: {e}", path.display()))?;
    check_image_bytes(&bytes).map_err(|m| format!("image {}: {m}", path.display()))?;
    Ok(bytes)
}

/// Accepts JPEG, PNG and WebP by their signatures; decoding is left to the loader.
pub(crate) fn check_image_bytes(bytes: &[u8]) -> std::result::Result<(), String> {
    use image::ImageFormat as F;
    match image::guess_format(bytes) {
        Ok(F::Jpeg | F::Png | F::WebP) => Ok(()),
        Ok(other) => Err(format!(
            "is {other:?}, but shards hold JPEG, PNG or WebP only"
        )),
        Err(_) => Err(format!(
            "{} bytes that are not JPEG, PNG or WebP (starts {:02x?})",
            bytes.len(),
            &bytes[..bytes.len().min(8)]
        )),
    }
}
