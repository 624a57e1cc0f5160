//! `palisade bench`.

use anyhow::Result;
use palisade_trainer::{bench, bench_data, bench_decode, ExperimentConfig};
use std::path::PathBuf;

/// Benchmarks.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Images/s through the input path (read, decode, resize, normalise, batch) over webli shards.
    Data {
        /// Parquet files or globs.
        #[arg(required = true)]
        shards: Vec<String>,
        /// Model input resolution.
        #[arg(long, default_value_t = 224)]
        resolution: usize,
        /// Decode threads (repeat to measure several, e.g. --threads 1 --threads 2).
        #[arg(long, default_values_t = [1])]
        threads: Vec<usize>,
        /// Batch size.
        #[arg(long, default_value_t = 64)]
        batch: usize,
    },
    /// Time PaLI training steps (ViT frozen unless --train-vision) on random data.
    PaliTrainStep {
        /// PaLI preset (`mu`, `tiny`, `pali3`).
        #[arg(long, default_value = "tiny")]
        preset: String,
        /// Vocabulary size.
        #[arg(long, default_value_t = 1024)]
        vocab: usize,
        /// Image resolution (default: the preset's).
        #[arg(long)]
        image_size: Option<usize>,
        /// Examples per step.
        #[arg(long, default_value_t = 16)]
        batch: usize,
        /// Prompt tokens.
        #[arg(long, default_value_t = 16)]
        prompt_len: usize,
        /// Target tokens.
        #[arg(long, default_value_t = 16)]
        target_len: usize,
        /// Train the image encoder too (stage 2).
        #[arg(long)]
        train_vision: bool,
        /// Timed steps.
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// Untimed warm-up steps.
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        /// libtorch threads (0: all cores).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Also write the model's config.json (for the PyTorch baseline).
        #[arg(long)]
        model_config_out: Option<PathBuf>,
    },
    /// Tokens/s of generation (greedy and beam, key/value cache on and off) for a T5/UL2 size.
    Decode {
        /// Language-model preset (`tiny`, `t5-v1_1-small`, `t5-v1_1-base`, `ul2-3b`, …).
        #[arg(long, default_value = "t5-v1_1-small")]
        preset: String,
        /// Vocabulary size (default: T5's 32,128 plus 1,024 location tokens).
        #[arg(long, default_value_t = 33152)]
        vocab: usize,
        /// Examples per call.
        #[arg(long, default_value_t = 4)]
        batch: usize,
        /// Encoder tokens (e.g. 256 visual + 16 prompt).
        #[arg(long, default_value_t = 272)]
        enc_len: usize,
        /// Tokens generated per example.
        #[arg(long, default_value_t = 32)]
        new_tokens: usize,
        /// Beam size.
        #[arg(long, default_value_t = 4)]
        beams: usize,
        /// Timed repetitions (after one warm-up).
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// libtorch threads (0: all cores).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Also write the model's transformers config.json (for the PyTorch baseline).
        #[arg(long)]
        model_config_out: Option<PathBuf>,
    },
    /// Time training steps (forward, backward, clip, AdamW) of a config's model on random data.
    TrainStep {
        /// Experiment config.
        config: PathBuf,
        /// Override a key (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Timed steps.
        #[arg(long, default_value_t = 20)]
        steps: usize,
        /// Untimed warm-up steps.
        #[arg(long, default_value_t = 3)]
        warmup: usize,
        /// Vocabulary size (default: the config's tokenizer, else the text spec's, else 32000).
        #[arg(long)]
        vocab: Option<usize>,
        /// Also write the benchmarked model's config.json here (for the PyTorch baseline).
        #[arg(long)]
        model_config_out: Option<PathBuf>,
    },
}

/// Runs a benchmark and prints its JSON line.
pub fn run(c: Command) -> Result<()> {
    match c {
        Command::Data {
            shards,
            resolution,
            threads,
            batch,
        } => {
            let mut paths = Vec::new();
            for p in &shards {
                paths.extend(palisade_data::resolve_shards(p, std::path::Path::new("."))?);
            }
            for t in threads {
                let r = bench_data::data(paths.clone(), resolution, t, batch)?;
                eprintln!(
                    "data: {} threads: {:.1} images/s ({} images in {:.2} s)",
                    r.threads, r.images_per_sec, r.images, r.seconds
                );
                println!("{}", serde_json::to_string(&r)?);
            }
        }
        Command::PaliTrainStep {
            preset,
            vocab,
            image_size,
            batch,
            prompt_len,
            target_len,
            train_vision,
            steps,
            warmup,
            threads,
            model_config_out,
        } => {
            let mut cfg = palisade_model::pali::PaliConfig::preset(&preset, vocab)?;
            if let Some(s) = image_size {
                cfg.vision_config.image_size = s;
            }
            if let Some(out) = &model_config_out {
                cfg.save(out)?;
            }
            let shape = bench::PaliStepShape {
                batch,
                prompt_len,
                target_len,
                freeze_vision: !train_vision,
            };
            let r = bench::pali_train_step(&cfg, shape, threads, warmup, steps)?;
            eprintln!(
                "pali-train-step {preset}: {:.2} ms/step (median of {}), {:.1} examples/s, batch {}, {} trainable params, {} threads",
                r.ms_per_step_median, r.steps, r.pairs_per_sec, r.batch_size, r.params, r.threads
            );
            println!("{}", serde_json::to_string(&r)?);
        }
        Command::Decode {
            preset,
            vocab,
            batch,
            enc_len,
            new_tokens,
            beams,
            repeats,
            threads,
            model_config_out,
        } => {
            let cfg = palisade_model::t5::T5Config::preset(&preset, vocab)?;
            if let Some(out) = &model_config_out {
                let mut v = serde_json::to_value(&cfg)?;
                v["architectures"] = serde_json::json!(["T5ForConditionalGeneration"]);
                std::fs::write(out, serde_json::to_string_pretty(&v)?)?;
            }
            let shape = bench_decode::DecodeShape {
                batch,
                enc_len,
                new_tokens,
                beams,
                repeats,
            };
            for r in bench_decode::decode(&cfg, shape, threads)? {
                eprintln!(
                    "decode {preset}: {:>7} cache={:<5} {:8.3} s/call {:9.1} tokens/s",
                    r.strategy, r.use_cache, r.seconds, r.tokens_per_sec
                );
                println!("{}", serde_json::to_string(&r)?);
            }
        }
        Command::TrainStep {
            config,
            sets,
            steps,
            warmup,
            vocab,
            model_config_out,
        } => {
            let cfg = ExperimentConfig::load(&config, &sets)?;
            let vocab = match vocab.or(cfg.model.text.as_ref().and_then(|t| t.vocab_size)) {
                Some(v) => v,
                None if cfg.data.tokenizer.exists() => {
                    palisade_trainer::setup::tokenizer(&cfg)?.vocab_size()
                }
                None => 32000,
            };
            if let Some(out) = &model_config_out {
                palisade_trainer::setup::model_config(&cfg, vocab)?.save(out)?;
            }
            let r = bench::train_step(&cfg, vocab, warmup, steps)?;
            eprintln!(
                "train-step: {:.2} ms/step (median of {}), {:.1} pairs/s, batch {}, {} params, {} threads",
                r.ms_per_step_median, r.steps, r.pairs_per_sec, r.batch_size, r.params, r.threads
            );
            println!("{}", serde_json::to_string(&r)?);
        }
    }
    Ok(())
}
