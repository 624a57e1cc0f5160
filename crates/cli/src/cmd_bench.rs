//! `palisade bench`.

use anyhow::Result;
use palisade_trainer::bench::{
    self, collectives::AllReduceShape, data::DataShape, decode::DecodeShape, PaliStepBench,
};
use palisade_trainer::ExperimentConfig;
use std::path::PathBuf;

/// Benchmarks.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Images/s through the input path (read, decode, resize, normalise, batch) over webli shards.
    Data(DataShape),
    /// Time PaLI training steps (ViT frozen unless --train-vision) on random data.
    PaliTrainStep(PaliStepBench),
    /// Time a float32 all-reduce over the job's ranks (run under mpirun or palisade launch).
    AllReduce(AllReduceShape),
    /// Tokens/s of generation (greedy and beam, key/value cache on and off) for a T5/UL2 size.
    Decode(DecodeShape),
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

/// Runs a benchmark, prints a summary on stderr and its JSON line(s) on stdout.
pub fn run(c: Command) -> Result<()> {
    match c {
        Command::Data(shape) => {
            for r in bench::data::data_threads(&shape)? {
                eprintln!("data: {}", r.summary());
                println!("{}", serde_json::to_string(&r)?);
            }
        }
        Command::PaliTrainStep(shape) => {
            let r = bench::pali_train_step(&shape)?;
            eprintln!("pali-train-step {}: {}", shape.preset, r.summary());
            println!("{}", serde_json::to_string(&r)?);
        }
        Command::AllReduce(shape) => {
            let lead = palisade_sharding::discover()?.rank == 0;
            for r in bench::collectives::all_reduce(&shape)? {
                if lead {
                    eprintln!("all-reduce: {}", r.summary());
                    println!("{}", serde_json::to_string(&r)?);
                }
            }
        }
        Command::Decode(shape) => {
            for r in bench::decode::decode(&shape)? {
                eprintln!("decode {}: {}", shape.preset, r.summary());
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
            let out = model_config_out.as_deref();
            let r = bench::train_step(&cfg, vocab, out, warmup, steps)?;
            eprintln!("train-step: {}", r.summary());
            println!("{}", serde_json::to_string(&r)?);
        }
    }
    Ok(())
}
