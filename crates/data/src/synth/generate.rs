//! What `palisade data synth` generates: shapes scenes, their task shards, or video clips, each
//! with a tokenizer trained on its texts.

use std::path::{Path, PathBuf};

use super::{write_shapes, write_shapes_tasks, write_task_tokenizer, write_video_tasks};
use super::{ShapesConfig, Task, VideoConfig};
use crate::error::Result;
use crate::tokenizer::train_tokenizer_for;

/// A synthetic dataset to generate.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Generation {
    /// Captioning, VQA and referring-expression shards (caption/, vqa/, refcoco/) of the same
    /// scenes as `synth shapes` with the same seed, plus a tokenizer.json with location tokens.
    Tasks {
        /// Output folder (shards and tokenizer.json).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        scenes: ShapesConfig,
        /// Tokenizer vocabulary cap (location tokens come on top).
        #[arg(long, default_value_t = 512)]
        vocab_size: usize,
    },
    /// Scenes of coloured shapes with captions and per-object annotations, plus a tokenizer.json.
    Shapes {
        /// Output folder (shards and tokenizer.json).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        scenes: ShapesConfig,
        /// Tokenizer vocabulary cap.
        #[arg(long, default_value_t = 512)]
        vocab_size: usize,
    },
    /// Clips of coloured shapes moving left, right, up or down: captioning and VQA shards of the
    /// `video` spec (caption/, vqa/), plus a tokenizer.json with location tokens.
    Video {
        /// Output folder (caption/, vqa/ and tokenizer.json).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        clips: VideoConfig,
        /// Tokenizer vocabulary cap (location tokens come on top).
        #[arg(long, default_value_t = 512)]
        vocab_size: usize,
    },
}

impl Generation {
    /// Writes the data and its tokenizer; returns what was written, for people.
    pub fn run(&self) -> Result<String> {
        match self {
            Generation::Shapes {
                out,
                scenes,
                vocab_size,
            } => {
                let summary = write_shapes(out, scenes)?;
                let tok_path = out.join("tokenizer.json");
                let tok = train_tokenizer_for(&summary.shards, *vocab_size, &tok_path)?;
                Ok(format!(
                    "wrote {} rows in {} shards and {} ({} tokens) to {}",
                    summary.rows,
                    summary.shards.len(),
                    tok_path.display(),
                    tok.vocab_size(),
                    out.display()
                ))
            }
            Generation::Tasks {
                out,
                scenes,
                vocab_size,
            } => {
                let s = write_shapes_tasks(out, scenes)?;
                task_shards(out, &s.tasks, &s.texts, *vocab_size, "")
            }
            Generation::Video {
                out,
                clips,
                vocab_size,
            } => {
                let s = write_video_tasks(out, clips)?;
                task_shards(out, &s.tasks, &s.texts, *vocab_size, " (spec video)")
            }
        }
    }
}

/// Trains the task shards' tokenizer (with location tokens) into `out` and says what was
/// written: `(task, shards, rows)` per task.
fn task_shards(
    out: &Path,
    tasks: &[(Task, Vec<PathBuf>, usize)],
    texts: &[String],
    vocab_size: usize,
    note: &str,
) -> Result<String> {
    let tok_path = out.join("tokenizer.json");
    let tok = write_task_tokenizer(texts, vocab_size, &tok_path)?;
    let mut lines: Vec<String> = tasks
        .iter()
        .map(|(task, shards, n)| {
            format!(
                "{}: {n} rows{note} in {} shards under {}",
                task.name(),
                shards.len(),
                out.join(task.name()).display()
            )
        })
        .collect();
    lines.push(format!(
        "tokenizer: {} tokens (with location tokens) in {}",
        tok.vocab_size(),
        tok_path.display()
    ));
    Ok(lines.join("\n"))
}
