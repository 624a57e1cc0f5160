//! What a model that never sees the image scores: a baseline fitted on the training rows' text
//! and applied to the held-out prompts, so that every task metric can stand beside it.
//!
//! - captioning: the training set's most frequent caption, for every image;
//! - VQA: the most frequent training answer of the question's type (VQA's "per question type
//!   prior"; one type when the data has no `question_type` column);
//! - RefCOCO: the mean training box, for every expression.
//!
//! Ties go to the lexicographically first answer, so a baseline does not depend on row order.

use crate::error::{MetricsError, Result};
use crate::task::TaskKind;
use crate::task_scores::VQA_LABELS;
use palisade_data::loc::{box_to_tokens, NormBox};
use palisade_data::RowText;
use std::collections::{BTreeMap, HashMap};

/// A fitted blind baseline.
#[derive(Debug, Clone, PartialEq)]
pub enum Blind {
    /// One answer for every example (captioning, RefCOCO's mean box as location tokens).
    Constant(String),
    /// VQA: the answer per question type, and over all types for a type training never saw.
    PerType {
        /// Question type → its most frequent training answer.
        by_type: BTreeMap<String, String>,
        /// The most frequent training answer overall.
        overall: String,
    },
}

/// Fits the baseline of a `kind` task on training `rows` (their targets, boxes and labels).
pub fn fit(kind: TaskKind, rows: &[RowText]) -> Result<Blind> {
    let none = || {
        MetricsError::Invalid(format!(
            "{} blind baseline: no readable training rows to fit it on",
            kind.name()
        ))
    };
    match kind {
        TaskKind::Caption | TaskKind::VideoCaption => {
            most_frequent(rows.iter().flat_map(|r| r.references.iter()))
                .map(Blind::Constant)
                .ok_or_else(none)
        }
        TaskKind::Vqa | TaskKind::VideoQa => {
            let mut by_type: HashMap<&str, Vec<&String>> = HashMap::new();
            for r in rows {
                if let Some(t) = &r.target {
                    by_type.entry(question_type(&r.labels)).or_default().push(t);
                }
            }
            let overall = most_frequent(by_type.values().flatten().copied()).ok_or_else(none)?;
            let by_type = by_type
                .into_iter()
                .filter_map(|(t, answers)| Some((t.to_string(), most_frequent(answers)?)))
                .collect();
            Ok(Blind::PerType { by_type, overall })
        }
        TaskKind::Refcoco => {
            let boxes: Vec<&NormBox> = rows.iter().filter_map(|r| r.target_box.as_ref()).collect();
            if boxes.is_empty() {
                return Err(none());
            }
            let n = boxes.len() as f64;
            let mean = |f: fn(&NormBox) -> f64| boxes.iter().map(|b| f(b)).sum::<f64>() / n;
            let b = NormBox::new(
                mean(|b| b.y1),
                mean(|b| b.x1),
                mean(|b| b.y2),
                mean(|b| b.x2),
            )
            .map_err(|e| MetricsError::Invalid(format!("refcoco blind baseline: {e}")))?;
            let tokens = box_to_tokens(&b)
                .map_err(|e| MetricsError::Invalid(format!("refcoco blind baseline: {e}")))?;
            Ok(Blind::Constant(tokens))
        }
    }
}

impl Blind {
    /// The baseline's answer to an example with these label columns.
    pub fn answer(&self, labels: &BTreeMap<String, String>) -> &str {
        match self {
            Blind::Constant(a) => a,
            Blind::PerType { by_type, overall } => by_type
                .get(question_type(labels))
                .unwrap_or(overall)
                .as_str(),
        }
    }
}

fn question_type(labels: &BTreeMap<String, String>) -> &str {
    labels.get(VQA_LABELS[0]).map_or("", String::as_str)
}

/// The most frequent string; ties to the lexicographically first.
fn most_frequent<'a>(items: impl IntoIterator<Item = &'a String>) -> Option<String> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for s in items {
        *counts.entry(s.as_str()).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by(|(a, x), (b, y)| x.cmp(y).then(b.cmp(a)))
        .map(|(s, _)| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(target: &str, refs: &[&str], qtype: Option<&str>, b: Option<NormBox>) -> RowText {
        RowText {
            id: String::new(),
            text: String::new(),
            target: Some(target.into()),
            references: refs.iter().map(|s| s.to_string()).collect(),
            target_box: b,
            labels: qtype
                .map(|t| BTreeMap::from([(VQA_LABELS[0].to_string(), t.to_string())]))
                .unwrap_or_default(),
        }
    }

    #[test]
    fn vqa_answers_each_type_with_its_most_frequent_answer() {
        let rows = [
            row("2", &[], Some("how many"), None),
            row("3", &[], Some("how many"), None),
            row("3", &[], Some("how many"), None),
            row("yes", &[], Some("is there"), None),
            row("no", &[], Some("is there"), None),
            row("red", &[], Some("what color"), None),
        ];
        let b = fit(TaskKind::Vqa, &rows).unwrap();
        let ask = |t: &str| {
            b.answer(&BTreeMap::from([(VQA_LABELS[0].into(), t.into())]))
                .to_string()
        };
        assert_eq!(ask("how many"), "3");
        // A tie goes to the first in order: "no" before "yes".
        assert_eq!(ask("is there"), "no");
        assert_eq!(ask("what color"), "red");
        // An unseen type gets the overall answer ("3": three of six).
        assert_eq!(ask("where is"), "3");
        assert_eq!(b.answer(&BTreeMap::new()), "3");
    }

    #[test]
    fn caption_is_the_most_frequent_reference() {
        let rows = [
            row("", &["a cat", "a dog"], None, None),
            row("", &["a dog", "two dogs"], None, None),
        ];
        let b = fit(TaskKind::Caption, &rows).unwrap();
        assert_eq!(b, Blind::Constant("a dog".into()));
    }

    #[test]
    fn refcoco_predicts_the_mean_box() {
        let rows = [
            row(
                "",
                &[],
                None,
                Some(NormBox::new(0.0, 0.0, 0.5, 0.5).unwrap()),
            ),
            row(
                "",
                &[],
                None,
                Some(NormBox::new(0.5, 0.5, 1.0, 1.0).unwrap()),
            ),
        ];
        let b = fit(TaskKind::Refcoco, &rows).unwrap();
        let mean = box_to_tokens(&NormBox::new(0.25, 0.25, 0.75, 0.75).unwrap()).unwrap();
        assert_eq!(b, Blind::Constant(mean));
    }

    #[test]
    fn no_training_rows_is_an_error_naming_the_task() {
        let e = fit(TaskKind::Refcoco, &[]).unwrap_err().to_string();
        assert!(
            e.contains("refcoco") && e.contains("no readable training rows"),
            "{e}"
        );
    }
}
