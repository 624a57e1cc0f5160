//! `palisade bench`.

use anyhow::Result;
use palisade_trainer::{bench, ExperimentConfig};
use std::path::PathBuf;

/// Benchmarks.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
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
        Command::TrainStep {
            config,
            sets,
            steps,
            warmup,
            vocab,
            model_config_out,
        } => {
            let cfg = ExperimentConfig::load(&config, &sets)?;
            let vocab = match vocab.or(cfg.model.text.vocab_size) {
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
