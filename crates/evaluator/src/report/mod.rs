//! Evaluation results and their reports — JSON for machines, Markdown and one HTML page for
//! people, each number beside its chance level — and the run-folder layout they live in.

pub mod examples;
pub mod html;
mod markdown;
pub mod run_folder;

pub use markdown::format_metric;
pub use run_folder::RunFolder;

use crate::error::{EvalError, Result};
use palisade_data::loc::NormBox;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Recall@K in one direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrievalResult {
    /// `image_to_text` or `text_to_image`.
    pub direction: String,
    /// The cut-off K.
    pub k: usize,
    /// Fraction of queries with a correct answer in the top K.
    pub recall: f64,
    /// The same for a random ranking.
    pub chance: f64,
    /// The best any model can reach on this set, where the data says (synthetic scenes: an
    /// image whose caption fits other scenes as well can at best tie with them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<f64>,
}

/// One zero-shot classification task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZeroShotResult {
    /// Task name.
    pub name: String,
    /// Top-1 accuracy.
    pub accuracy: f64,
    /// 1 / number of classes.
    pub chance: f64,
    /// Share of the most frequent class.
    pub majority: f64,
    /// Classes.
    pub classes: usize,
    /// Examples scored.
    pub examples: usize,
}

/// One generative task's scores (captioning, VQA, RefCOCO, video captioning or QA).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    /// Task name from the config (e.g. `coco_caption`).
    pub name: String,
    /// Task kind: `caption`, `vqa`, `refcoco`, `video_caption` or `video_qa`.
    pub kind: String,
    /// Examples scored.
    pub examples: usize,
    /// Examples skipped as unreadable.
    pub skipped: usize,
    /// Name of the headline metric in `metrics` (`cider`, `vqa_accuracy`, `acc@0.5`).
    pub headline: String,
    /// Metric name → value; accuracies are fractions, CIDEr is ×1 (pycocoevalcap's scale).
    /// Breakdowns use `/`: `vqa_accuracy/yes/no`, `acc@0.5/testA`.
    pub metrics: BTreeMap<String, f64>,
    /// The same metrics for the blind baseline (no image seen; `palisade_metrics::blind`),
    /// empty when there was no training data to fit it on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub blind: BTreeMap<String, f64>,
}

/// A qualitative example for the report: what the model saw, said and should have said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// Task name.
    pub task: String,
    /// Row id.
    pub id: String,
    /// The prompt given to the model.
    pub prompt: String,
    /// The decoded prediction.
    pub prediction: String,
    /// Reference captions / answers (a detection's true box as location tokens).
    pub references: Vec<String>,
    /// The example's score under the task's headline metric (VQA accuracy, IoU, CIDEr).
    pub score: Option<f64>,
    /// The model's input image as a PNG, relative to the report folder (first frame of a video).
    pub image: Option<String>,
    /// Frames the model saw (1 for an image).
    #[serde(default = "one")]
    pub frames: usize,
    /// Predicted box (detection tasks; None if the prediction is not a box).
    pub predicted_box: Option<NormBox>,
    /// True box (detection tasks).
    pub true_box: Option<NormBox>,
}

fn one() -> usize {
    1
}

/// Everything one evaluation measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Training step of the evaluated weights, when known.
    pub step: Option<u64>,
    /// Examples evaluated.
    pub examples: usize,
    /// Examples skipped as unreadable.
    pub skipped: usize,
    /// Retrieval in both directions.
    pub retrieval: Vec<RetrievalResult>,
    /// Zero-shot tasks.
    pub zero_shot: Vec<ZeroShotResult>,
    /// Generative tasks (PaLI).
    #[serde(default)]
    pub tasks: Vec<TaskResult>,
    /// Qualitative examples (final evaluations only).
    #[serde(default)]
    pub qualitative: Vec<Example>,
}

impl EvalReport {
    /// Flat `(name, value)` pairs for metric logs (`eval/i2t_r@1`, `eval/zs_shape`, …).
    pub fn scalars(&self) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> = self
            .retrieval
            .iter()
            .map(|r| {
                let d = if r.direction == "image_to_text" {
                    "i2t"
                } else {
                    "t2i"
                };
                (format!("eval/{d}_r@{}", r.k), r.recall)
            })
            .collect();
        out.extend(
            self.zero_shot
                .iter()
                .map(|z| (format!("eval/zeroshot_{}", z.name), z.accuracy)),
        );
        for t in &self.tasks {
            out.extend(
                t.metrics
                    .iter()
                    .map(|(k, v)| (format!("eval/{}/{k}", t.name), *v)),
            );
        }
        out
    }

    /// The report's title: the run's name and which evaluation run produced it (task
    /// benchmarks for PaLI models, retrieval for SigLIP's).
    pub fn title(&self, name: &str) -> String {
        let what = if self.tasks.is_empty() {
            "SigLIP"
        } else {
            "PaLI"
        };
        format!("{name}: {what} evaluation")
    }

    /// The report as JSON.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| EvalError::Invalid(e.to_string()))
    }

    /// Writes `eval.json` and `eval.md` into `dir` (created if needed), each whole.
    pub fn write(&self, dir: &Path, title: &str) -> Result<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(dir).map_err(|source| EvalError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let jp = dir.join(run_folder::EVAL_JSON);
        let mp = dir.join(run_folder::EVAL_MD);
        palisade_files::write(&jp, self.to_json()?)?;
        palisade_files::write(&mp, self.to_markdown(title))?;
        Ok((jp, mp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_shows_values_beside_chance() {
        let r = EvalReport {
            step: Some(5),
            examples: 10,
            skipped: 0,
            retrieval: vec![RetrievalResult {
                direction: "image_to_text".into(),
                k: 1,
                recall: 0.5,
                chance: 0.1,
                ceiling: Some(0.75),
            }],
            zero_shot: vec![ZeroShotResult {
                name: "shape".into(),
                accuracy: 0.75,
                chance: 0.25,
                majority: 0.3,
                classes: 4,
                examples: 10,
            }],
            tasks: vec![TaskResult {
                name: "vqa".into(),
                kind: "vqa".into(),
                examples: 10,
                skipped: 1,
                headline: "vqa_accuracy".into(),
                metrics: [
                    ("vqa_accuracy".to_string(), 0.5),
                    ("cider".to_string(), 1.25),
                    ("loss".to_string(), 0.75),
                ]
                .into(),
                blind: [("vqa_accuracy".to_string(), 0.25)].into(),
            }],
            qualitative: vec![Example {
                task: "vqa".into(),
                id: "q|1".into(),
                prompt: "answer en what?".into(),
                prediction: "red".into(),
                references: vec!["red".into(), "blue".into()],
                score: Some(0.3),
                image: None,
                frames: 1,
                predicted_box: None,
                true_box: None,
            }],
        };
        let md = r.to_markdown("t");
        assert!(
            md.contains("| image to text | R@1 | 50.00% | 10.00% | 75.00% |"),
            "{md}"
        );
        assert!(
            md.contains("| shape | 4 | 75.00% | 25.00% | 30.00% |"),
            "{md}"
        );
        assert!(md.contains("**vqa_accuracy 50.00%** | 25.00% |"), "{md}");
        assert!(md.contains("cider 125.00, loss 0.7500"), "{md}");
        assert!(
            md.contains("| q\\|1 | answer en what? | red | red · blue | 0.300 |"),
            "{md}"
        );
        let names: Vec<String> = r.scalars().into_iter().map(|(k, _)| k).collect();
        assert!(
            names.contains(&"eval/vqa/vqa_accuracy".to_string()),
            "{names:?}"
        );
        let dir = tempfile::tempdir().unwrap();
        let (j, _) = r.write(dir.path(), "t").unwrap();
        let back: EvalReport = serde_json::from_str(&std::fs::read_to_string(j).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
