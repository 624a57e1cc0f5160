//! A PaLI benchmark's decoded predictions → its metrics, with the same scorers `palisade score`
//! uses on official files: CIDEr/BLEU/ROUGE-L (captioning), VQA accuracy, exact match and ANLS
//! (VQA), and box accuracy at IoU 0.5 (RefCOCO).

use crate::captions::{tokenize_for_coco, ImageCaptions};
use crate::error::{MetricsError, Result};
use crate::refcoco::{iou, refcoco_scores, tokens_to_box, RefExample};
use crate::task::TaskKind;
use crate::vqa::{question_accuracy, vqa_accuracy, VqaPrediction, VqaQuestion};
use crate::{anls, bleu, cider, exact_match, rouge};
use palisade_data::loc::NormBox;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Label columns a task reads besides its references, when the shards have them.
pub const VQA_LABELS: [&str; 2] = ["question_type", "answer_type"];
/// RefCOCO's split column.
pub const REFCOCO_SPLIT: &str = "split";

/// One decoded example with everything scoring needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Row id (unique within the task).
    pub id: String,
    /// The prompt the model was given.
    pub prompt: String,
    /// The decoded output.
    pub prediction: String,
    /// Reference captions or answers (a detection's box as location tokens).
    pub references: Vec<String>,
    /// A detection's true box.
    pub target_box: Option<NormBox>,
    /// Label columns read with the row (`answer_type`, `split`, …).
    pub labels: BTreeMap<String, String>,
}

/// Metrics of one task and each example's score under the headline metric (input order).
pub struct Scored {
    /// Metric name → value (fractions; caption metrics on pycocoevalcap's scale).
    pub metrics: BTreeMap<String, f64>,
    /// Per-example headline score (CIDEr, VQA accuracy, IoU).
    pub per_example: Vec<f64>,
}

/// Scores `preds` (at least one) as a task of `kind`.
pub fn score(kind: TaskKind, preds: &[Prediction]) -> Result<Scored> {
    if preds.is_empty() {
        return Err(MetricsError::Invalid(format!(
            "{}: no predictions to score",
            kind.name()
        )));
    }
    match kind {
        TaskKind::Caption | TaskKind::VideoCaption => captions(preds),
        TaskKind::Vqa | TaskKind::VideoQa => vqa(preds),
        TaskKind::Refcoco => refcoco(preds),
    }
}

fn captions(preds: &[Prediction]) -> Result<Scored> {
    let images: Vec<ImageCaptions> = preds
        .iter()
        .map(|p| ImageCaptions {
            image_id: p.id.clone(),
            candidate: p.prediction.clone(),
            references: p.references.clone(),
        })
        .collect();
    let tok = tokenize_for_coco(&images);
    let c = cider::cider(&tok)?;
    let b = bleu::bleu(&tok)?;
    let r = rouge::rouge_l(&tok)?;
    let mut metrics = BTreeMap::from([
        ("cider".to_string(), c.score),
        ("rouge_l".to_string(), r.score),
    ]);
    for (n, v) in b.corpus.iter().enumerate() {
        metrics.insert(format!("bleu{}", n + 1), *v);
    }
    Ok(Scored {
        metrics,
        per_example: c.per_image,
    })
}

fn vqa(preds: &[Prediction]) -> Result<Scored> {
    // The official scorer keys questions by integer id; ours are strings, so number them.
    let label = |p: &Prediction, k: &str| p.labels.get(k).cloned().unwrap_or_else(|| "all".into());
    let questions: Vec<VqaQuestion> = preds
        .iter()
        .enumerate()
        .map(|(i, p)| VqaQuestion {
            question_id: i as i64,
            question_type: label(p, VQA_LABELS[0]),
            answer_type: label(p, VQA_LABELS[1]),
            answers: p.references.clone(),
        })
        .collect();
    let answers: Vec<VqaPrediction> = preds
        .iter()
        .enumerate()
        .map(|(i, p)| VqaPrediction {
            question_id: i as i64,
            answer: p.prediction.clone(),
        })
        .collect();
    let acc = vqa_accuracy(&questions, &answers)?.exact;
    let mut metrics = BTreeMap::from([("vqa_accuracy".to_string(), acc.overall / 100.0)]);
    if acc.per_answer_type.len() > 1 || !acc.per_answer_type.contains_key("all") {
        for (t, v) in &acc.per_answer_type {
            metrics.insert(format!("vqa_accuracy/{t}"), v / 100.0);
        }
    }
    // Per question type ("where is the", "how many"), so that one weak kind of question shows
    // rather than hiding in its answer type's mean.
    if acc.per_question_type.len() > 1 || !acc.per_question_type.contains_key("all") {
        for (t, v) in &acc.per_question_type {
            let key = t.trim().replace(' ', "_");
            metrics.insert(format!("vqa_accuracy/question/{key}"), v / 100.0);
        }
    }
    let pairs: Vec<(String, Vec<String>)> = preds
        .iter()
        .map(|p| (p.prediction.clone(), p.references.clone()))
        .collect();
    metrics.insert("exact_match".into(), exact_match::exact_match(&pairs)?);
    metrics.insert("anls".into(), anls::anls(&pairs)?);
    Ok(Scored {
        metrics,
        per_example: preds
            .iter()
            .map(|p| question_accuracy(&p.prediction, &p.references))
            .collect(),
    })
}

fn refcoco(preds: &[Prediction]) -> Result<Scored> {
    let examples: Vec<RefExample> = preds
        .iter()
        .map(|p| {
            Ok(RefExample {
                split: p
                    .labels
                    .get(REFCOCO_SPLIT)
                    .cloned()
                    .unwrap_or_else(|| "all".into()),
                prediction: p.prediction.clone(),
                target: p.target_box.ok_or_else(|| {
                    MetricsError::Invalid(format!("refcoco: example {} has no true box", p.id))
                })?,
            })
        })
        .collect::<Result<_>>()?;
    let r = refcoco_scores(&examples)?;
    let mut metrics = BTreeMap::new();
    let mut put = |suffix: &str, s: &crate::refcoco::RefScores| {
        metrics.insert(format!("acc@0.5{suffix}"), s.acc_50);
        metrics.insert(format!("acc@0.75{suffix}"), s.acc_75);
        metrics.insert(format!("mean_iou{suffix}"), s.mean_iou);
        metrics.insert(format!("invalid_rate{suffix}"), s.invalid_rate);
    };
    put("", &r.overall);
    if r.per_split.len() > 1 {
        for (split, s) in &r.per_split {
            put(&format!("/{split}"), s);
        }
    }
    Ok(Scored {
        metrics,
        per_example: examples
            .iter()
            .map(|e| tokens_to_box(&e.prediction).map_or(0.0, |b| iou(&b, &e.target)))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pred(id: &str, prediction: &str, refs: &[&str]) -> Prediction {
        Prediction {
            id: id.into(),
            prompt: String::new(),
            prediction: prediction.into(),
            references: refs.iter().map(|s| s.to_string()).collect(),
            target_box: None,
            labels: BTreeMap::new(),
        }
    }

    #[test]
    fn vqa_scores_match_the_official_rule_and_break_down_by_answer_type() {
        let mut a = pred("1", "Two", &["2", "2", "2", "two", "3"]);
        a.labels.insert("answer_type".into(), "number".into());
        a.labels.insert("question_type".into(), "how many".into());
        let mut b = pred("2", "yes", &["no"; 10]);
        b.labels.insert("answer_type".into(), "yes/no".into());
        b.labels.insert("question_type".into(), "is there a".into());
        let s = score(TaskKind::Vqa, &[a, b]).unwrap();
        // "Two" normalises to "2" (the official code normalises the ground truth's punctuation
        // only, so its "two" stays); leave-one-out mean of min(1, matches / 3): (3·2/3 + 2·1)/5.
        assert!(
            (s.per_example[0] - 0.8).abs() < 1e-12,
            "{:?}",
            s.per_example
        );
        assert_eq!(s.per_example[1], 0.0);
        assert!((s.metrics["vqa_accuracy"] - 0.4).abs() < 1e-12);
        assert!((s.metrics["vqa_accuracy/number"] - 0.8).abs() < 1e-12);
        assert_eq!(s.metrics["vqa_accuracy/yes/no"], 0.0);
        assert!((s.metrics["vqa_accuracy/question/how_many"] - 0.8).abs() < 1e-12);
        assert_eq!(s.metrics["vqa_accuracy/question/is_there_a"], 0.0);
    }

    #[test]
    fn refcoco_scores_boxes_and_counts_unparseable_output_as_a_miss() {
        let truth = NormBox::new(0.0, 0.0, 0.5, 0.5).unwrap();
        let mut a = pred(
            "a",
            &palisade_data::loc::box_to_tokens(&truth).unwrap(),
            &[],
        );
        a.target_box = Some(truth);
        a.labels.insert("split".into(), "testA".into());
        let mut b = pred("b", "a cat", &[]);
        b.target_box = Some(truth);
        b.labels.insert("split".into(), "testB".into());
        let s = score(TaskKind::Refcoco, &[a, b]).unwrap();
        assert_eq!(s.metrics["acc@0.5"], 0.5);
        assert_eq!(s.metrics["invalid_rate"], 0.5);
        assert_eq!(s.metrics["acc@0.5/testA"], 1.0);
        assert_eq!(s.metrics["acc@0.5/testB"], 0.0);
        assert!(s.per_example[0] > 0.99 && s.per_example[1] == 0.0);
        // A detection row without its box cannot be scored: say which.
        let e = score(TaskKind::Refcoco, &[pred("c", "x", &[])])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("example c"), "{e}");
    }

    #[test]
    fn captions_score_cider_bleu_and_rouge() {
        let preds = [
            pred("1", "a red circle", &["a red circle", "a small red circle"]),
            pred("2", "a blue square", &["a green triangle"]),
        ];
        let s = score(TaskKind::Caption, &preds).unwrap();
        assert!(s.per_example[0] > s.per_example[1], "{:?}", s.per_example);
        for k in ["cider", "bleu1", "bleu4", "rouge_l"] {
            assert!(s.metrics.contains_key(k), "{k}");
        }
        assert!(score(TaskKind::Caption, &[]).is_err());
    }
}
