//! `palisade data`.

use anyhow::Result;
use palisade_data::convert::{self, ConvertConfig, ConvertSummary, ExpressionField};
use palisade_data::ShapesConfig;
use std::path::PathBuf;

/// Data subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Generate synthetic data.
    #[command(subcommand)]
    Synth(Synth),
    /// Convert public datasets (COCO captions, VQAv2, RefCOCO, webdataset, JSON lines) to shards.
    #[command(subcommand)]
    Convert(Convert),
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

/// Source formats `palisade data convert` reads.
#[derive(clap::Subcommand, Debug)]
pub enum Convert {
    /// COCO captions (`captions_*.json` + image folder) to `caption` shards, one row per image.
    CocoCaptions {
        /// The `captions_{train,val}YEAR.json` file.
        #[arg(long)]
        annotations: PathBuf,
        /// Folder holding the images the file names.
        #[arg(long)]
        images: PathBuf,
        #[command(flatten)]
        out: ConvertOut,
    },
    /// VQAv2 (questions + annotations JSON + COCO images) to `vqa` shards, one row per question.
    Vqa {
        /// `v2_OpenEnded_mscoco_{split}_questions.json`.
        #[arg(long)]
        questions: PathBuf,
        /// `v2_mscoco_{split}_annotations.json`; leave out for test splits (no answers).
        #[arg(long)]
        annotations: Option<PathBuf>,
        /// Folder holding `COCO_{subtype}_{image_id:012}.jpg`.
        #[arg(long)]
        images: PathBuf,
        /// Image subtype in the file names (default: the questions file's data_subtype;
        /// test-dev needs test2015).
        #[arg(long)]
        subtype: Option<String>,
        #[command(flatten)]
        out: ConvertOut,
    },
    /// RefCOCO/RefCOCO+/RefCOCOg (`refs(*).p` + instances.json + COCO images) to `refcoco`
    /// shards, one row per sentence.
    Refcoco {
        /// `refs(unc).p`, `refs(umd).p` or `refs(google).p`.
        #[arg(long)]
        refs: PathBuf,
        /// The dataset's `instances.json`.
        #[arg(long)]
        instances: PathBuf,
        /// COCO image folder (`train2014/`).
        #[arg(long)]
        images: PathBuf,
        /// Keep only this split (train, val, test, testA, testB).
        #[arg(long)]
        split: Option<String>,
        /// Sentence text to store: `sent` (lower-cased, tokenised) or `raw`.
        #[arg(long, default_value = "sent", value_parser = ["sent", "raw"])]
        expression: String,
        #[command(flatten)]
        out: ConvertOut,
    },
    /// webdataset tars (`KEY.jpg|png|webp` + `KEY.txt`, optional `KEY.json`) to `webli` shards.
    Webdataset {
        /// Uncompressed `.tar` files, read in the order given.
        #[arg(required = true)]
        tars: Vec<PathBuf>,
        #[command(flatten)]
        out: ConvertOut,
    },
    /// A folder of images with a JSON-lines manifest (`{"image", "text", "lang"?, "id"?}`) to
    /// `webli` shards.
    Jsonl {
        /// The manifest, one JSON object per line.
        #[arg(long)]
        manifest: PathBuf,
        /// Folder the `image` paths are relative to (default: the manifest's folder).
        #[arg(long)]
        images: Option<PathBuf>,
        #[command(flatten)]
        out: ConvertOut,
    },
}

/// Output options shared by every converter.
#[derive(clap::Args, Debug)]
pub struct ConvertOut {
    /// Output folder for the shards (created if absent).
    #[arg(long)]
    out: PathBuf,
    /// Shard file prefix: PREFIX-XXXXX-of-NNNNN.parquet (default: the spec name).
    #[arg(long)]
    prefix: Option<String>,
    /// Rows per Parquet file.
    #[arg(long, default_value_t = 4096)]
    rows_per_shard: usize,
    /// Rows per row group (the loader holds one in memory).
    #[arg(long, default_value_t = 256)]
    rows_per_group: usize,
    /// Count and skip missing images and malformed entries instead of stopping.
    #[arg(long)]
    skip_missing: bool,
    /// Language stored in `lang` where the source names none.
    #[arg(long, default_value = "en")]
    lang: String,
}

impl ConvertOut {
    fn config(&self, spec: &str) -> ConvertConfig {
        ConvertConfig {
            out_dir: self.out.clone(),
            prefix: self.prefix.clone().unwrap_or_else(|| spec.to_string()),
            rows_per_shard: self.rows_per_shard,
            rows_per_group: self.rows_per_group,
            skip_missing: self.skip_missing,
        }
    }
}

/// Runs one converter and prints what it wrote.
fn run_convert(c: Convert) -> Result<()> {
    let (spec, out, summary) = match c {
        Convert::CocoCaptions {
            annotations,
            images,
            out,
        } => {
            let src = convert::CocoCaptionsSource {
                annotations,
                images,
                lang: out.lang.clone(),
            };
            let s = convert::convert_coco_captions(&src, &out.config("caption"))?;
            ("caption", out, s)
        }
        Convert::Vqa {
            questions,
            annotations,
            images,
            subtype,
            out,
        } => {
            let src = convert::VqaSource {
                questions,
                annotations,
                images,
                subtype,
                lang: out.lang.clone(),
            };
            let s = convert::convert_vqa(&src, &out.config("vqa"))?;
            ("vqa", out, s)
        }
        Convert::Refcoco {
            refs,
            instances,
            images,
            split,
            expression,
            out,
        } => {
            let src = convert::RefcocoSource {
                refs,
                instances,
                images,
                split,
                expression: match expression.as_str() {
                    "raw" => ExpressionField::Raw,
                    _ => ExpressionField::Sent,
                },
                lang: out.lang.clone(),
            };
            let s = convert::convert_refcoco(&src, &out.config("refcoco"))?;
            ("refcoco", out, s)
        }
        Convert::Webdataset { tars, out } => {
            let src = convert::WebdatasetSource {
                tars,
                lang: out.lang.clone(),
            };
            let s = convert::convert_webdataset(&src, &out.config("webli"))?;
            ("webli", out, s)
        }
        Convert::Jsonl {
            manifest,
            images,
            out,
        } => {
            let images = images.unwrap_or_else(|| {
                manifest
                    .parent()
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("."))
            });
            let src = convert::JsonlSource {
                manifest,
                images,
                lang: out.lang.clone(),
            };
            let s = convert::convert_jsonl(&src, &out.config("webli"))?;
            ("webli", out, s)
        }
    };
    report(spec, &out.out, &summary);
    Ok(())
}

fn report(spec: &str, out: &std::path::Path, s: &ConvertSummary) {
    println!(
        "wrote {} rows in {} shards (spec {spec}) to {}",
        s.rows,
        s.shards.len(),
        out.display()
    );
    if s.skipped > 0 {
        println!("skipped {} entries (--skip-missing), e.g.:", s.skipped);
        for example in &s.skipped_examples {
            println!("  {example}");
        }
    }
}

/// Synthetic data kinds.
#[derive(clap::Subcommand, Debug)]
pub enum Synth {
    /// Captioning, VQA and referring-expression shards (caption/, vqa/, refcoco/) of the same
    /// scenes as `synth shapes` with the same seed, plus a tokenizer.json with location tokens.
    Tasks(SceneArgs),
    /// Scenes of coloured shapes with captions and per-object annotations, plus a tokenizer.json.
    Shapes(SceneArgs),
    /// Clips of coloured shapes moving left, right, up or down: captioning and VQA shards of the
    /// `video` spec (caption/, vqa/), plus a tokenizer.json with location tokens.
    Video(VideoArgs),
}

/// Options of `palisade data synth video`.
#[derive(clap::Args, Debug)]
pub struct VideoArgs {
    /// Output folder (caption/, vqa/ and tokenizer.json).
    #[arg(long)]
    out: PathBuf,
    /// Number of clips.
    #[arg(long)]
    rows: usize,
    /// Frames of the longest clip (clips have half to all of this many).
    #[arg(long, default_value_t = 8)]
    frames: usize,
    /// Frame side in pixels.
    #[arg(long, default_value_t = 32)]
    image_size: u32,
    /// Most moving shapes per clip (1-4, each moving its own way).
    #[arg(long, default_value_t = 1)]
    max_objects: usize,
    /// Clips per Parquet shard.
    #[arg(long, default_value_t = 1024)]
    rows_per_shard: usize,
    /// Clips per row group.
    #[arg(long, default_value_t = 64)]
    rows_per_group: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Tokenizer vocabulary cap (location tokens come on top).
    #[arg(long, default_value_t = 512)]
    vocab_size: usize,
}

/// Options shared by the synthetic-scene generators.
#[derive(clap::Args, Debug)]
pub struct SceneArgs {
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
    /// Scenes per Parquet shard.
    #[arg(long, default_value_t = 1024)]
    rows_per_shard: usize,
    /// Scenes per row group.
    #[arg(long, default_value_t = 256)]
    rows_per_group: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Tokenizer vocabulary cap (location tokens come on top for `tasks`).
    #[arg(long, default_value_t = 512)]
    vocab_size: usize,
}

impl SceneArgs {
    fn shapes_config(&self) -> ShapesConfig {
        ShapesConfig {
            rows: self.rows,
            image_size: self.image_size,
            max_objects: self.max_objects,
            rows_per_shard: self.rows_per_shard,
            rows_per_group: self.rows_per_group,
            seed: self.seed,
        }
    }
}

/// Runs a data subcommand.
pub fn run(c: Command) -> Result<()> {
    match c {
        Command::Convert(c) => run_convert(c)?,
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
        Command::Synth(Synth::Tasks(a)) => {
            let summary = palisade_data::write_shapes_tasks(&a.out, &a.shapes_config())?;
            let tasks: Vec<_> = summary
                .tasks
                .iter()
                .map(|(t, shards, n)| (t.name(), shards.len(), *n))
                .collect();
            finish_task_shards(&a.out, &summary.texts, a.vocab_size, &tasks, "")?;
        }
        Command::Synth(Synth::Video(a)) => {
            let cfg = palisade_data::VideoConfig {
                clips: a.rows,
                frames: a.frames,
                image_size: a.image_size,
                max_objects: a.max_objects,
                rows_per_shard: a.rows_per_shard,
                rows_per_group: a.rows_per_group,
                seed: a.seed,
            };
            let summary = palisade_data::write_video_tasks(&a.out, &cfg)?;
            let tasks: Vec<_> = summary
                .tasks
                .iter()
                .map(|(t, shards, n)| (t.name(), shards.len(), *n))
                .collect();
            finish_task_shards(
                &a.out,
                &summary.texts,
                a.vocab_size,
                &tasks,
                " (spec video)",
            )?;
        }
        Command::Synth(Synth::Shapes(a)) => {
            let summary = palisade_data::write_shapes(&a.out, &a.shapes_config())?;
            let tok_path = a.out.join("tokenizer.json");
            let tok = palisade_data::train_tokenizer_for(&summary.shards, a.vocab_size, &tok_path)?;
            println!(
                "wrote {} rows in {} shards and {} ({} tokens) to {}",
                summary.rows,
                summary.shards.len(),
                tok_path.display(),
                tok.vocab_size(),
                a.out.display()
            );
        }
    }
    Ok(())
}

/// Trains the task shards' tokenizer (with location tokens) into `out` and prints what was
/// written: `(task, shards, rows)` per task.
fn finish_task_shards(
    out: &std::path::Path,
    texts: &[String],
    vocab_size: usize,
    tasks: &[(&str, usize, usize)],
    note: &str,
) -> Result<()> {
    let tok = palisade_data::TextTokenizer::train(texts, vocab_size)?.with_loc_tokens();
    let tok_path = out.join("tokenizer.json");
    tok.save(&tok_path)?;
    for (task, shards, n) in tasks {
        println!(
            "{task}: {n} rows{note} in {shards} shards under {}",
            out.join(task).display()
        );
    }
    println!(
        "tokenizer: {} tokens (with location tokens) in {}",
        tok.vocab_size(),
        tok_path.display()
    );
    Ok(())
}
