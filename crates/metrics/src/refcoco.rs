//! Referring-expression localisation (RefCOCO / RefCOCO+ / RefCOCOg) from PaLI location tokens.
//!
//! A box is written as four tokens `<locYYYY>` in the order y_min, x_min, y_max, x_max, each a
//! bin v in 0..=1023 with c = v / 1023 (`palisade_data::loc`). IoU is computed on normalised
//! boxes (scaling x and y by the image size leaves it unchanged).
//!
//! Scores per split and overall: acc@0.5 (the headline number: IoU ≥ 0.5), acc@0.75, mean IoU,
//! and the rate of predictions that do not parse as a box — those count as misses with IoU 0.

use std::collections::BTreeMap;

use crate::error::{MetricsError, Result};

// Boxes and their location tokens live with the tokenizer (`palisade_data::loc`), so data
// preparation and scoring share one mapping.
pub use palisade_data::loc::{box_to_tokens, tokens_to_box, NormBox};

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
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
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
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
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
        return Err(MetricsError::Invalid(
            "RefCOCO: no examples to score".into(),
        ));
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
