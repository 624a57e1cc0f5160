//! The evaluation section of an experiment config.

pub use palisade_metrics::TaskKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// PaLI benchmarks by name: captioning, VQA, RefCOCO, video.
    #[serde(default)]
    pub tasks: BTreeMap<String, EvalTask>,
    /// How PaLI predictions are decoded.
    #[serde(default)]
    pub decode: DecodeSettings,
    /// Qualitative examples per task kept for the report.
    #[serde(default = "default_examples")]
    pub examples: usize,
}

/// One PaLI benchmark: its kind and held-out shards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalTask {
    /// What the task measures.
    pub kind: TaskKind,
    /// Shards: a glob, a folder or a list file.
    pub data: String,
    /// Data spec of the shards (default: the kind's).
    #[serde(default)]
    pub spec: Option<String>,
    /// The shards' own names for the spec's columns (`{question: q}`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, String>,
    /// Prompt template (default: the kind's, e.g. `answer {lang} {question}`).
    #[serde(default)]
    pub prompt: Option<String>,
    /// Video tasks: most frames per clip, at a fixed stride (default 16, as PaLI-3).
    #[serde(default)]
    pub frames: Option<usize>,
    /// Training shards the blind baseline is fitted on (default: the data mixture's sources of
    /// this kind, the one named like the task if any); `none` leaves the baseline out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_data: Option<String>,
}

/// Decoding settings for PaLI evaluations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecodeSettings {
    /// Most generated tokens per example (EOS included).
    #[serde(default = "default_max_new_tokens")]
    pub max_new_tokens: usize,
    /// Beam size (1: greedy).
    #[serde(default = "default_beams")]
    pub beams: usize,
    /// Beam search's length-normalisation exponent.
    #[serde(default = "default_length_penalty")]
    pub length_penalty: f64,
}

impl Default for DecodeSettings {
    fn default() -> Self {
        DecodeSettings {
            max_new_tokens: default_max_new_tokens(),
            beams: default_beams(),
            length_penalty: default_length_penalty(),
        }
    }
}

fn default_max_new_tokens() -> usize {
    32
}
fn default_beams() -> usize {
    1
}
fn default_length_penalty() -> f64 {
    1.0
}
fn default_examples() -> usize {
    6
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
            tasks: BTreeMap::new(),
            decode: DecodeSettings::default(),
            examples: default_examples(),
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
        if self.decode.max_new_tokens == 0 || self.decode.beams == 0 {
            return Err("key eval.decode: max_new_tokens and beams must be positive".into());
        }
        for (name, t) in &self.tasks {
            if t.data.trim().is_empty() {
                return Err(format!("key eval.tasks.{name}.data: names no shards"));
            }
            let video = t.kind.is_video();
            match t.frames {
                Some(0) => return Err(format!("key eval.tasks.{name}.frames: must be at least 1")),
                Some(_) if !video => {
                    return Err(format!(
                        "key eval.tasks.{name}.frames: only video tasks (video_caption, video_qa) have frames"
                    ))
                }
                _ => {}
            }
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
