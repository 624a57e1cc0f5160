//! Referring-expression localisation (RefCOCO / RefCOCO+ / RefCOCOg) from PaLI location tokens.
//!
//! A box is written as four tokens `<locYYYY>` in the order y_min, x_min, y_max, x_max, each a
//! four-digit bin v in 0..=1023. Bins map to normalised coordinates (fractions of the image
//! height or width) by c = v / 1023, and back by v = round(c · 1023), so 0 and 1023 are the
//! image edges and a decode–encode round trip is exact. IoU is computed on normalised boxes
//! (scaling x and y by the image size leaves it unchanged).
//!
//! Scores per split and overall: acc@0.5 (the headline number: IoU ≥ 0.5), acc@0.75, mean IoU,
//! and the rate of predictions that do not parse as a box — those count as misses with IoU 0.

use std::collections::BTreeMap;

use crate::error::{EvalError, Result};

/// Number of location bins.
pub const LOC_BINS: u32 = 1024;
/// The largest bin, which maps to coordinate 1.0.
const MAX_BIN: f64 = (LOC_BINS - 1) as f64;

/// An axis-aligned box in normalised coordinates, PaLI order (y before x).
#[derive(Debug, Clone, Copy, PartialEq)]
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
    /// From a COCO pixel box (x, y, width, height) in an image of `width` × `height` pixels,
    /// clamped to the image (COCO boxes sometimes overshoot the border by a fraction of a pixel).
    pub fn from_coco_xywh(xywh: [f64; 4], width: f64, height: f64) -> Result<Self> {
        let [x, y, w, h] = xywh;
        if !(width.is_finite() && height.is_finite()) || width <= 0.0 || height <= 0.0 {
            return Err(EvalError::Invalid(format!(
                "image size {width}x{height} must be positive"
            )));
        }
        let clamp = |v: f64| v.clamp(0.0, 1.0);
        Self::new(
            clamp(y / height),
            clamp(x / width),
            clamp((y + h) / height),
            clamp((x + w) / width),
        )
    }

    /// Checks that the coordinates are finite, within [0, 1] and ordered (min ≤ max).
    pub fn new(y1: f64, x1: f64, y2: f64, x2: f64) -> Result<Self> {
        let b = NormBox { y1, x1, y2, x2 };
        let named = [("y1", y1), ("x1", x1), ("y2", y2), ("x2", x2)];
        if let Some((name, v)) = named.iter().find(|(_, v)| !(0.0..=1.0).contains(v)) {
            return Err(EvalError::Invalid(format!(
                "box coordinate {name} = {v} is outside [0, 1]"
            )));
        }
        if y2 < y1 || x2 < x1 {
            return Err(EvalError::Invalid(format!(
                "box has y2 < y1 or x2 < x1: {b:?}"
            )));
        }
        Ok(b)
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
        .map(|c| format!("<loc{:04}>", (c * MAX_BIN).round() as u32))
        .collect())
}

/// Parses one `<locYYYY>` token at the start of `s`; returns the bin and the rest of `s`.
fn parse_loc(s: &str, index: usize) -> Result<(u32, &str)> {
    let bad = |what: String| EvalError::Invalid(format!("location token {index}: {what}"));
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
    if v >= LOC_BINS {
        return Err(bad(format!("bin {v} exceeds {}", LOC_BINS - 1)));
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
        return Err(EvalError::Invalid(format!(
            "unexpected {shown:?} right after the fourth location token"
        )));
    }
    let [y1, x1, y2, x2] = bins.map(|v| v as f64 / MAX_BIN);
    NormBox::new(y1, x1, y2, x2)
}

/// Intersection over union of two boxes (0 when the union is empty).
pub fn iou(a: &NormBox, b: &NormBox) -> f64 {
    let inter = NormBox {
        y1: a.y1.max(b.y1),
        x1: a.x1.max(b.x1),
        y2: a.y2.min(b.y2),
        x2: a.x2.min(b.x2),
    }
    .area();
    let union = a.area() + b.area() - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// One referring expression: its split, the model's raw output and the ground-truth box.
#[derive(Debug, Clone, PartialEq)]
pub struct RefExample {
    /// Split name, e.g. "refcoco/testA".
    pub split: String,
    /// The model's output text.
    pub prediction: String,
    /// The ground-truth box.
    pub target: NormBox,
}

/// Localisation scores of a set of examples; accuracies and rates are fractions in [0, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct RefScores {
    /// Number of examples.
    pub count: usize,
    /// Fraction with IoU ≥ 0.5 (the headline number).
    pub acc_50: f64,
    /// Fraction with IoU ≥ 0.75.
    pub acc_75: f64,
    /// Mean IoU, invalid predictions counting 0.
    pub mean_iou: f64,
    /// Fraction of predictions that did not parse as a box.
    pub invalid_rate: f64,
}

/// Scores over all examples and per split.
#[derive(Debug, Clone, PartialEq)]
pub struct RefReport {
    /// All splits together.
    pub overall: RefScores,
    /// Keyed by split name.
    pub per_split: BTreeMap<String, RefScores>,
}

/// IoUs (None for unparseable predictions) → scores.
fn summarize(ious: &[Option<f64>]) -> RefScores {
    let n = ious.len() as f64;
    let frac = |f: &dyn Fn(&Option<f64>) -> bool| ious.iter().filter(|x| f(x)).count() as f64 / n;
    RefScores {
        count: ious.len(),
        acc_50: frac(&|x| x.is_some_and(|v| v >= 0.5)),
        acc_75: frac(&|x| x.is_some_and(|v| v >= 0.75)),
        mean_iou: ious.iter().map(|x| x.unwrap_or(0.0)).sum::<f64>() / n,
        invalid_rate: frac(&|x| x.is_none()),
    }
}

/// Scores predictions against ground-truth boxes, overall and per split.
pub fn refcoco_scores(examples: &[RefExample]) -> Result<RefReport> {
    if examples.is_empty() {
        return Err(EvalError::Invalid("RefCOCO: no examples to score".into()));
    }
    let mut all = Vec::with_capacity(examples.len());
    let mut by_split: BTreeMap<&str, Vec<Option<f64>>> = BTreeMap::new();
    for ex in examples {
        let v = tokens_to_box(&ex.prediction)
            .ok()
            .map(|b| iou(&b, &ex.target));
        all.push(v);
        by_split.entry(&ex.split).or_default().push(v);
    }
    Ok(RefReport {
        overall: summarize(&all),
        per_split: by_split
            .into_iter()
            .map(|(k, v)| (k.to_string(), summarize(&v)))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(y1: f64, x1: f64, y2: f64, x2: f64) -> NormBox {
        NormBox::new(y1, x1, y2, x2).unwrap()
    }

    #[test]
    fn tokens_round_trip_and_mapping() {
        let t = box_to_tokens(&b(0.0, 0.25, 0.5, 1.0)).unwrap();
        // 0.25 · 1023 = 255.75 → 256; 0.5 · 1023 = 511.5 → 512 (round half away from zero).
        assert_eq!(t, "<loc0000><loc0256><loc0512><loc1023>");
        let back = tokens_to_box(&t).unwrap();
        assert_eq!(back, b(0.0, 256.0 / 1023.0, 512.0 / 1023.0, 1.0));
        assert_eq!(box_to_tokens(&back).unwrap(), t);
        // Label after the tokens and spaces between them are accepted.
        let with_label = tokens_to_box(" <loc0000> <loc0256><loc0512><loc1023> man on left");
        assert_eq!(with_label.unwrap(), back);
    }

    #[test]
    fn malformed_tokens_are_named() {
        let err = |s: &str| tokens_to_box(s).unwrap_err().to_string();
        assert!(err("<loc0001><loc0002>").contains("token 3"));
        assert!(err("<loc001><loc0002><loc0003><loc0004>").contains("four digits"));
        assert!(err("<loc0001><loc2000><loc0003><loc0004>").contains("bin 2000"));
        assert!(err("a cat <loc0001>").contains("token 1"));
        assert!(err("<loc0001><loc0002><loc0003><loc0004>x").contains("fourth"));
        assert!(err("<loc0500><loc0000><loc0100><loc0010>").contains("y2 < y1"));
        assert!(err("<loc0001><loc0002><loc0003").contains("token 3"));
        assert!(box_to_tokens(&NormBox {
            y1: 0.0,
            x1: 0.0,
            y2: 1.5,
            x2: 1.0
        })
        .is_err());
    }

    #[test]
    fn iou_by_hand() {
        let a = b(0.0, 0.0, 0.5, 0.5);
        assert_eq!(iou(&a, &a), 1.0);
        // Overlap 0.25 × 0.5 of two 0.25-area boxes: 0.125 / 0.375 = 1/3.
        let c = b(0.0, 0.25, 0.5, 0.75);
        assert!((iou(&a, &c) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(iou(&a, &b(0.6, 0.6, 0.9, 0.9)), 0.0);
        let px = NormBox::from_coco_xywh([10.0, 20.0, 30.0, 40.0], 100.0, 200.0).unwrap();
        assert_eq!(px, b(0.1, 0.1, 0.3, 0.4));
    }

    #[test]
    fn scores_per_split_with_invalid_as_miss() {
        let target = b(0.0, 0.0, 0.5, 0.5);
        let ex = |split: &str, pred: &str| RefExample {
            split: split.into(),
            prediction: pred.into(),
            target,
        };
        let exact = box_to_tokens(&target).unwrap();
        let third = box_to_tokens(&b(0.0, 0.25, 0.5, 0.75)).unwrap();
        let r = refcoco_scores(&[
            ex("val", &exact),
            ex("val", "garbage"),
            ex("testA", &third),
            ex("testA", &exact),
        ])
        .unwrap();
        assert_eq!(r.overall.count, 4);
        assert_eq!(r.overall.acc_50, 0.5);
        assert_eq!(r.overall.invalid_rate, 0.25);
        assert_eq!(r.per_split["val"].acc_75, 0.5);
        assert_eq!(r.per_split["val"].invalid_rate, 0.5);
        assert!(r.per_split["testA"].mean_iou > 0.6 && r.per_split["testA"].mean_iou < 0.7);
        assert!(refcoco_scores(&[]).is_err());
    }
}
