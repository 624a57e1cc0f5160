//! Evaluation results and their JSON and Markdown reports, each number beside its chance level.

use crate::error::{EvalError, Result};
use serde::{Deserialize, Serialize};
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
        out
    }

    /// The report as Markdown.
    pub fn to_markdown(&self, title: &str) -> String {
        let mut md = format!("# {title}\n\n");
        if let Some(s) = self.step {
            md += &format!("Step {s}; ");
        }
        md += &format!(
            "{} held-out examples ({} skipped as unreadable).\n\n",
            self.examples, self.skipped
        );
        md += "## Retrieval\n\n| direction | Recall@K | value | chance |\n|---|---|---|---|\n";
        for r in &self.retrieval {
            md += &format!(
                "| {} | R@{} | {:.2}% | {:.2}% |\n",
                r.direction.replace('_', " "),
                r.k,
                100.0 * r.recall,
                100.0 * r.chance
            );
        }
        if !self.zero_shot.is_empty() {
            md += "\n## Zero-shot classification\n\n| task | classes | accuracy | chance (1/classes) | majority class |\n|---|---|---|---|---|\n";
            for z in &self.zero_shot {
                md += &format!(
                    "| {} | {} | {:.2}% | {:.2}% | {:.2}% |\n",
                    z.name,
                    z.classes,
                    100.0 * z.accuracy,
                    100.0 * z.chance,
                    100.0 * z.majority
                );
            }
        }
        md
    }

    /// Writes `eval.json` and `eval.md` into `dir` (created if needed), each atomically.
    pub fn write(&self, dir: &Path, title: &str) -> Result<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(dir).map_err(|source| EvalError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let json =
            serde_json::to_string_pretty(self).map_err(|e| EvalError::Invalid(e.to_string()))?;
        let jp = dir.join("eval.json");
        let mp = dir.join("eval.md");
        write_atomic(&jp, &json)?;
        write_atomic(&mp, &self.to_markdown(title))?;
        Ok((jp, mp))
    }
}

/// Writes `text` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|source| EvalError::Io {
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, path).map_err(|source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    })
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
            }],
            zero_shot: vec![ZeroShotResult {
                name: "shape".into(),
                accuracy: 0.75,
                chance: 0.25,
                majority: 0.3,
                classes: 4,
                examples: 10,
            }],
        };
        let md = r.to_markdown("t");
        assert!(
            md.contains("| image to text | R@1 | 50.00% | 10.00% |"),
            "{md}"
        );
        assert!(
            md.contains("| shape | 4 | 75.00% | 25.00% | 30.00% |"),
            "{md}"
        );
        let dir = tempfile::tempdir().unwrap();
        let (j, _) = r.write(dir.path(), "t").unwrap();
        let back: EvalReport = serde_json::from_str(&std::fs::read_to_string(j).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
