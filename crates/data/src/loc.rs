//! PaLI location tokens for boxes. A box is four tokens `<locYYYY>` in the order y_min, x_min,
//! y_max, x_max; each coordinate c, a fraction of the image height or width, is bin
//! v = round(c · 1023), and back c = v / 1023 — so 0 and 1023 are the image edges and a
//! decode–encode round trip is exact.

use crate::error::{DataError, Result};
use crate::tokenizer::{loc_token, LOC_TOKENS};

/// The largest bin, which maps to coordinate 1.0.
const MAX_BIN: f64 = (LOC_TOKENS - 1) as f64;

fn invalid(message: String) -> DataError {
    DataError::Box(message)
}

/// An axis-aligned box in normalised coordinates, PaLI order (y before x).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NormBox {
    /// Top edge, as a fraction of the image height.
    pub y1: f64,
    /// Left edge, as a fraction of the image width.
    pub x1: f64,
    /// Bottom edge, as a fraction of the image height.
    pub y2: f64,
    /// Right edge, as a fraction of the image width.
    pub x2: f64,
}

impl NormBox {
    /// Checks that the coordinates are finite, within [0, 1] and ordered (min ≤ max).
    pub fn new(y1: f64, x1: f64, y2: f64, x2: f64) -> Result<Self> {
        let b = NormBox { y1, x1, y2, x2 };
        let named = [("y1", y1), ("x1", x1), ("y2", y2), ("x2", x2)];
        if let Some((name, v)) = named.iter().find(|(_, v)| !(0.0..=1.0).contains(v)) {
            return Err(invalid(format!(
                "coordinate {name} = {v} is outside [0, 1]"
            )));
        }
        if y2 < y1 || x2 < x1 {
            return Err(invalid(format!("y2 < y1 or x2 < x1: {b:?}")));
        }
        Ok(b)
    }

    /// From a COCO pixel box (x, y, width, height) in a `width` × `height` image, clamped to
    /// the image (COCO boxes sometimes overshoot the border by a fraction of a pixel).
    pub fn from_coco_xywh(xywh: [f64; 4], width: f64, height: f64) -> Result<Self> {
        let [x, y, w, h] = xywh;
        if !(width.is_finite() && height.is_finite()) || width <= 0.0 || height <= 0.0 {
            return Err(invalid(format!(
                "image size {width}x{height} must be positive"
            )));
        }
        let c = |v: f64| v.clamp(0.0, 1.0);
        Self::new(
            c(y / height),
            c(x / width),
            c((y + h) / height),
            c((x + w) / width),
        )
    }

    /// Pixel corners (x1, y1, x2, y2) in a `width` × `height` image.
    pub fn to_pixels(&self, width: f64, height: f64) -> [f64; 4] {
        [
            self.x1 * width,
            self.y1 * height,
            self.x2 * width,
            self.y2 * height,
        ]
    }

    /// Area in normalised units.
    pub fn area(&self) -> f64 {
        (self.y2 - self.y1).max(0.0) * (self.x2 - self.x1).max(0.0)
    }
}

/// The four `<locYYYY>` tokens of a box.
pub fn box_to_tokens(b: &NormBox) -> Result<String> {
    let b = NormBox::new(b.y1, b.x1, b.y2, b.x2)?;
    Ok([b.y1, b.x1, b.y2, b.x2]
        .iter()
        .map(|c| loc_token((c * MAX_BIN).round() as usize))
        .collect())
}

/// Parses one `<locYYYY>` token at the start of `s`; returns the bin and the rest of `s`.
fn parse_loc(s: &str, index: usize) -> Result<(u32, &str)> {
    let bad = |what: String| invalid(format!("location token {index}: {what}"));
    let Some(rest) = s.strip_prefix("<loc") else {
        let shown: String = s.chars().take(12).collect();
        return Err(bad(format!("expected \"<locNNNN>\", found {shown:?}")));
    };
    let Some(end) = rest.find('>') else {
        return Err(bad("missing \">\"".into()));
    };
    let digits = &rest[..end];
    if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(bad(format!(
            "\"<loc{digits}>\" must have exactly four digits"
        )));
    }
    let v: u32 = digits
        .parse()
        .map_err(|_| bad(format!("\"{digits}\" is not a number")))?;
    if v as usize >= LOC_TOKENS {
        return Err(bad(format!("bin {v} exceeds {}", LOC_TOKENS - 1)));
    }
    Ok((v, &rest[end + 1..]))
}

/// Parses a box from model output: four `<locYYYY>` tokens (y1 x1 y2 x2, whitespace between
/// them allowed), optionally followed by whitespace and a label (PaLI's detection format).
/// Errors say which token is wrong, or that the box is inverted.
pub fn tokens_to_box(text: &str) -> Result<NormBox> {
    let mut rest = text.trim_start();
    let mut bins = [0u32; 4];
    for (i, bin) in bins.iter_mut().enumerate() {
        let (v, r) = parse_loc(rest.trim_start(), i + 1)?;
        *bin = v;
        rest = r;
    }
    if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        let shown: String = rest.chars().take(12).collect();
        return Err(invalid(format!(
            "unexpected {shown:?} right after the fourth location token"
        )));
    }
    let [y1, x1, y2, x2] = bins.map(|v| f64::from(v) / MAX_BIN);
    NormBox::new(y1, x1, y2, x2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_malformed_sequences() {
        let b = NormBox::from_coco_xywh([10.0, 20.0, 30.0, 40.0], 100.0, 200.0).unwrap();
        let t = box_to_tokens(&b).unwrap();
        assert_eq!(t, "<loc0102><loc0102><loc0307><loc0409>");
        let back = tokens_to_box(&format!("{t} red circle")).unwrap();
        assert_eq!(box_to_tokens(&back).unwrap(), t);
        let px = back.to_pixels(100.0, 200.0);
        assert!(
            (px[0] - 10.0).abs() < 0.1 && (px[3] - 60.0).abs() < 0.2,
            "{px:?}"
        );
        for (bad, why) in [
            ("<loc0001><loc0002><loc0003>", "location token 4"),
            ("<loc0001><loc0002><loc0003><loc1024>", "exceeds 1023"),
            ("<loc0500><loc0000><loc0100><loc0010>", "y2 < y1"),
            ("<loc01><loc0002><loc0003><loc0004>", "four digits"),
            ("<loc0001><loc0002><loc0003><loc0004>x", "right after"),
        ] {
            let e = tokens_to_box(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
