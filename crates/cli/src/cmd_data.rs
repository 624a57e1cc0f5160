//! `palisade data`.

use anyhow::Result;
use palisade_data::ShapesConfig;
use std::path::PathBuf;

/// Data subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Generate synthetic data.
    #[command(subcommand)]
    Synth(Synth),
    /// Check shards against a data spec and summarise them (rows, columns, samples, bad rows).
    Inspect {
        /// Parquet files or globs.
        #[arg(required = true)]
        shards: Vec<String>,
        /// Spec name (webli, shapes, caption, vqa, refcoco, video) or a YAML path; default: the
        /// built-in spec the first shard fits best.
        #[arg(long)]
        spec: Option<String>,
        /// Sample rows to show.
        #[arg(long, default_value_t = 3)]
        samples: usize,
        /// Bad rows to list.
        #[arg(long, default_value_t = 20)]
        max_bad: usize,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Exit non-zero when any bad row is found.
        #[arg(long)]
        strict: bool,
    },
}

/// Synthetic data kinds.
#[derive(clap::Subcommand, Debug)]
pub enum Synth {
    /// Captioning, VQA and referring-expression shards (caption/, vqa/, refcoco/) of the same
    /// scenes as `synth shapes` with the same seed, plus a tokenizer.json with location tokens.
    Tasks {
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Number of scenes.
        #[arg(long)]
        rows: usize,
        /// Image side in pixels.
        #[arg(long, default_value_t = 64)]
        image_size: u32,
        /// Most objects per scene.
        #[arg(long, default_value_t = 2)]
        max_objects: usize,
        /// Scenes per shard.
        #[arg(long, default_value_t = 1024)]
        rows_per_shard: usize,
        /// Scenes per row group.
        #[arg(long, default_value_t = 256)]
        rows_per_group: usize,
        /// Random seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Tokenizer vocabulary cap (before the 1,024 location tokens).
        #[arg(long, default_value_t = 512)]
        vocab_size: usize,
    },
    /// Scenes of coloured shapes with captions and per-object annotations, plus a tokenizer.json.
    Shapes {
        /// Output folder (shards and tokenizer.json).
        #[arg(long)]
        out: PathBuf,
        /// Number of scenes.
        #[arg(long)]
        rows: usize,
        /// Image side in pixels.
        #[arg(long, default_value_t = 64)]
        image_size: u32,
        /// Most objects per scene.
        #[arg(long, default_value_t = 2)]
        max_objects: usize,
        /// Rows per Parquet shard.
        #[arg(long, default_value_t = 1024)]
        rows_per_shard: usize,
        /// Rows per row group.
        #[arg(long, default_value_t = 256)]
        rows_per_group: usize,
        /// Random seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Tokenizer vocabulary cap.
        #[arg(long, default_value_t = 512)]
        vocab_size: usize,
    },
}

/// Runs a data subcommand.
pub fn run(c: Command) -> Result<()> {
    match c {
        Command::Inspect {
            shards,
            spec,
            samples,
            max_bad,
            json,
            strict,
        } => {
            let mut paths = Vec::new();
            for pattern in &shards {
                paths.extend(palisade_data::resolve_shards(
                    pattern,
                    std::path::Path::new("."),
                )?);
            }
            let spec = match spec {
                Some(s) if s.ends_with(".yaml") || s.ends_with(".yml") => {
                    Some(palisade_data::DataSpec::load(std::path::Path::new(&s))?)
                }
                Some(s) => Some(palisade_data::DataSpec::embedded(&s)?),
                None => None,
            };
            let report = palisade_data::inspect::inspect(&paths, spec.as_ref(), samples, max_bad)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.to_text());
            }
            anyhow::ensure!(
                !(strict && report.bad_count > 0),
                "{} bad rows (--strict)",
                report.bad_count
            );
        }
        Command::Synth(Synth::Tasks {
            out,
            rows,
            image_size,
            max_objects,
            rows_per_shard,
            rows_per_group,
            seed,
            vocab_size,
        }) => {
            let cfg = ShapesConfig {
                rows,
                image_size,
                max_objects,
                rows_per_shard,
                rows_per_group,
                seed,
            };
            let summary = palisade_data::write_shapes_tasks(&out, &cfg)?;
            let tok =
                palisade_data::TextTokenizer::train(&summary.texts, vocab_size)?.with_loc_tokens();
            tok.save(&out.join("tokenizer.json"))?;
            for (task, shards, n) in &summary.tasks {
                println!(
                    "{}: {n} rows in {} shards under {}",
                    task.name(),
                    shards.len(),
                    out.join(task.name()).display()
                );
            }
            println!(
                "tokenizer: {} tokens (with location tokens) in {}",
                tok.vocab_size(),
                out.join("tokenizer.json").display()
            );
        }
        Command::Synth(Synth::Shapes {
            out,
            rows,
            image_size,
            max_objects,
            rows_per_shard,
            rows_per_group,
            seed,
            vocab_size,
        }) => {
            let cfg = ShapesConfig {
                rows,
                image_size,
                max_objects,
                rows_per_shard,
                rows_per_group,
                seed,
            };
            let summary = palisade_data::write_shapes(&out, &cfg)?;
            let tok_path = out.join("tokenizer.json");
            let tok = palisade_data::train_tokenizer_for(&summary.shards, vocab_size, &tok_path)?;
            println!(
                "wrote {} rows in {} shards and {} ({} tokens) to {}",
                summary.rows,
                summary.shards.len(),
                tok_path.display(),
                tok.vocab_size(),
                out.display()
            );
        }
    }
    Ok(())
}
