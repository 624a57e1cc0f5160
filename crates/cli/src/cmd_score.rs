//! `palisade score`: score predictions in the official result formats.

use anyhow::Result;
use palisade_metrics::score;
use std::path::PathBuf;

/// What to score.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// COCO captions: results [{image_id, caption}] vs a captions annotation file → CIDEr, BLEU, ROUGE-L.
    Caption {
        /// Results JSON.
        #[arg(long)]
        predictions: PathBuf,
        /// captions_*.json annotations.
        #[arg(long)]
        references: PathBuf,
    },
    /// VQA: results [{question_id, answer}] vs questions + annotations → VQA accuracy.
    Vqa {
        /// Results JSON.
        #[arg(long)]
        predictions: PathBuf,
        /// Questions JSON.
        #[arg(long)]
        questions: PathBuf,
        /// Annotations JSON.
        #[arg(long)]
        references: PathBuf,
    },
    /// RefCOCO: [{sent_id, prediction: "<loc…>" | box: [x, y, w, h]}] vs refcoco shards → acc@0.5.
    Refcoco {
        /// Predictions JSON.
        #[arg(long)]
        predictions: PathBuf,
        /// refcoco-spec Parquet shards (from `palisade data convert refcoco`), files or globs.
        #[arg(long, required = true, num_args = 1..)]
        references: Vec<String>,
    },
}

/// Scores and prints JSON.
pub fn run(c: Command) -> Result<()> {
    let out = match c {
        Command::Caption {
            predictions,
            references,
        } => score::score_captions(&predictions, &references)?,
        Command::Vqa {
            predictions,
            questions,
            references,
        } => score::score_vqa(&predictions, &questions, &references)?,
        Command::Refcoco {
            predictions,
            references,
        } => score::score_refcoco(&predictions, &references)?,
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
