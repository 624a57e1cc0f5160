//! The evaluation section of an experiment config.

use serde::{Deserialize, Serialize};

/// What to evaluate and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// Batch size for embedding.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Recall@K cut-offs.
    #[serde(default = "default_ks")]
    pub recall_at: Vec<usize>,
    /// Zero-shot classification tasks.
    #[serde(default)]
    pub zero_shot: Vec<ZeroShotTask>,
}

/// A zero-shot classification task: a label column, its classes and prompt templates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZeroShotTask {
    /// Task name in the report.
    pub name: String,
    /// Data column holding each example's class.
    pub label_column: String,
    /// Class names.
    pub classes: Vec<String>,
    /// Templates with `{}` for the class name; their embeddings are averaged.
    pub templates: Vec<String>,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            batch_size: default_batch(),
            recall_at: default_ks(),
            zero_shot: Vec::new(),
        }
    }
}

impl EvalConfig {
    /// Checks values the types cannot; messages name the key.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.batch_size == 0 {
            return Err("key eval.batch_size: must be positive".into());
        }
        if self.recall_at.is_empty() || self.recall_at.contains(&0) {
            return Err("key eval.recall_at: needs positive cut-offs".into());
        }
        for z in &self.zero_shot {
            if z.classes.len() < 2
                || z.templates.is_empty()
                || z.templates.iter().any(|t| !t.contains("{}"))
            {
                return Err(format!(
                    "key eval.zero_shot ({}): needs at least two classes and templates containing {{}}",
                    z.name
                ));
            }
        }
        Ok(())
    }
}

fn default_batch() -> usize {
    256
}
fn default_ks() -> Vec<usize> {
    vec![1, 5, 10]
}
