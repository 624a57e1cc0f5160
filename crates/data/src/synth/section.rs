//! The `data.synth` config section: synthetic data generated into the run's data folders when
//! they are missing, so a demo or test config trains from nothing.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{write_shapes, write_shapes_tasks, write_video_tasks, ShapesConfig, VideoConfig};
use crate::error::Result;
use crate::tokenizer::{train_tokenizer_for, TextTokenizer};

/// What `data.synth` generates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SynthKind {
    /// Still scenes: shapes shards (image-text pairs) or their caption/VQA/refcoco shards (tasks).
    #[default]
    Scenes,
    /// Clips of moving shapes: caption/ and vqa/ shards of the `video` spec (tasks).
    Video,
}

/// Synthetic shapes data to generate when missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthSection {
    /// Still scenes (default) or video clips.
    #[serde(default, skip_serializing_if = "is_scenes")]
    pub kind: SynthKind,
    /// `kind: video`: frames of the longest clip (clips have half to all of them).
    #[serde(
        default = "default_clip_frames",
        skip_serializing_if = "is_default_clip_frames"
    )]
    pub clip_frames: usize,
    /// Folder for the train split (the eval split goes to `eval_dir`).
    pub train_dir: PathBuf,
    /// Folder for the held-out split.
    pub eval_dir: PathBuf,
    /// Training rows.
    pub train_rows: usize,
    /// Held-out rows.
    pub eval_rows: usize,
    /// Rendered image size.
    #[serde(default = "default_synth_size")]
    pub image_size: u32,
    /// Most objects per scene.
    #[serde(default = "default_objects")]
    pub max_objects: usize,
    /// Tokenizer vocabulary cap.
    #[serde(default = "default_vocab")]
    pub vocab_size: usize,
    /// Scenes per Parquet row group: the unit the loader deals out to ranks (rank `r` of `W`
    /// reads units `r`, `r + W`, …), so a group of one rank's batch makes unshuffled runs on
    /// any number of ranks read one process's global batches.
    #[serde(
        default = "default_rows_per_group",
        skip_serializing_if = "is_default_rows_per_group"
    )]
    pub rows_per_group: usize,
}

fn is_scenes(k: &SynthKind) -> bool {
    *k == SynthKind::Scenes
}
fn default_clip_frames() -> usize {
    8
}
fn is_default_clip_frames(n: &usize) -> bool {
    *n == default_clip_frames()
}
fn default_synth_size() -> u32 {
    64
}
fn default_objects() -> usize {
    1
}
fn default_vocab() -> usize {
    512
}
fn default_rows_per_group() -> usize {
    ShapesConfig::default().rows_per_group
}
fn is_default_rows_per_group(n: &usize) -> bool {
    *n == default_rows_per_group()
}

/// The held-out split's seed is the experiment's, moved far enough to share no scene.
const EVAL_SEED_OFFSET: u64 = 1_000_003;

impl SynthSection {
    /// (folder, rows, seed) of the train and held-out splits for experiment seed `seed`.
    fn splits(&self, seed: u64) -> [(&Path, usize, u64); 2] {
        [
            (&self.train_dir, self.train_rows, seed),
            (
                &self.eval_dir,
                self.eval_rows,
                seed.wrapping_add(EVAL_SEED_OFFSET),
            ),
        ]
    }

    fn shapes(&self, rows: usize, seed: u64) -> ShapesConfig {
        ShapesConfig {
            rows,
            image_size: self.image_size,
            max_objects: self.max_objects,
            rows_per_group: self.rows_per_group,
            seed,
            ..Default::default()
        }
    }

    /// Image-text pairs: shapes shards in each split's folder unless it holds shards already,
    /// then a tokenizer trained on `train_shards` at `tokenizer` unless it exists.
    pub fn ensure_pairs(&self, seed: u64, train_shards: &str, tokenizer: &Path) -> Result<()> {
        if self.kind == SynthKind::Video {
            return Err(crate::DataError::config(
                "data.synth.kind",
                "video clips are for task mixtures (captioning and VQA), not image-text pairs",
            ));
        }
        for (dir, rows, seed) in self.splits(seed) {
            if !has_parquet(dir) {
                tracing::info!("generating {rows} synthetic scenes into {}", dir.display());
                write_shapes(dir, &self.shapes(rows, seed))?;
            }
        }
        if !tokenizer.exists() {
            tracing::info!(
                "training a {}-token tokenizer into {}",
                self.vocab_size,
                tokenizer.display()
            );
            let shards = crate::resolve_shards(train_shards, Path::new("."))?;
            train_tokenizer_for(&shards, self.vocab_size, tokenizer)?;
        }
        Ok(())
    }

    /// Task shards (caption/, vqa/, refcoco/ of scenes, or caption/ and vqa/ of clips) in each
    /// split's folder unless present, then a tokenizer with location tokens at `tokenizer`
    /// trained on their texts unless it exists.
    pub fn ensure_tasks(&self, seed: u64, tokenizer: &Path) -> Result<()> {
        let mut texts = Vec::new();
        for (dir, rows, seed) in self.splits(seed) {
            if has_parquet(&dir.join("caption")) {
                continue;
            }
            match self.kind {
                SynthKind::Scenes => {
                    tracing::info!(
                        "generating task shards of {rows} synthetic scenes into {}",
                        dir.display()
                    );
                    texts.extend(write_shapes_tasks(dir, &self.shapes(rows, seed))?.texts);
                }
                SynthKind::Video => {
                    tracing::info!(
                        "generating {rows} synthetic video clips into {}",
                        dir.display()
                    );
                    let video = VideoConfig {
                        clips: rows,
                        frames: self.clip_frames,
                        image_size: self.image_size,
                        max_objects: self.max_objects,
                        seed,
                        ..Default::default()
                    };
                    texts.extend(write_video_tasks(dir, &video)?.texts);
                }
            }
        }
        if !tokenizer.exists() {
            if texts.is_empty() {
                return Err(crate::DataError::config(
                    "data.tokenizer",
                    format!(
                        "{} is missing but the task shards exist; delete them to regenerate both",
                        tokenizer.display()
                    ),
                ));
            }
            tracing::info!(
                "training a {}-token tokenizer into {}",
                self.vocab_size,
                tokenizer.display()
            );
            write_task_tokenizer(&texts, self.vocab_size, tokenizer)?;
        }
        Ok(())
    }
}

/// Trains a tokenizer of at most `vocab_size` tokens on task texts, adds the location tokens and
/// saves it at `path`.
pub fn write_task_tokenizer(
    texts: &[String],
    vocab_size: usize,
    path: &Path,
) -> Result<TextTokenizer> {
    let tok = TextTokenizer::train(texts, vocab_size)?.with_loc_tokens();
    tok.save(path)?;
    Ok(tok)
}

/// Whether `dir` holds a `.parquet` file.
pub fn has_parquet(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "parquet"))
        })
        .unwrap_or(false)
}
