//! `palisade`: train SigLIP and PaLI-style models. Wiring only: parse, then call the crates.

mod cmd_bench;
mod cmd_checkpoint;
mod cmd_data;
mod cmd_doctor;
mod cmd_eval;
mod cmd_export;
mod cmd_forward;
mod cmd_import;
mod cmd_launch;
mod cmd_pali;
mod cmd_plan;
mod cmd_predict;
mod cmd_report;
mod cmd_score;
mod cmd_sweep;
mod cmd_tokenize;
mod cmd_train;

use clap::{Parser, Subcommand};
use std::io::IsTerminal;

/// palisade: SigLIP and PaLI-3 style vision-language training.
#[derive(Parser, Debug)]
#[command(name = "palisade", version, about, propagate_version = true)]
struct Cli {
    /// Log filter (e.g. `info`, `debug`, `palisade_trainer=debug`); RUST_LOG also works.
    #[arg(long, global = true, default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a model from a YAML experiment config.
    Train(cmd_train::Args),
    /// Evaluate a checkpoint on the held-out data a config names.
    Eval(cmd_eval::Args),
    /// Make, inspect and convert data shards.
    #[command(subcommand)]
    Data(cmd_data::Command),
    /// Import weights saved by other frameworks.
    #[command(subcommand)]
    Import(cmd_import::Command),
    /// Write a model folder as transformers' classes load it (PaLI: vision/, language/, projector).
    Export(cmd_export::Args),
    /// Run a checkpoint on tensors from a safetensors file and write its outputs.
    Forward(cmd_forward::Args),
    /// Assemble, resize and export PaLI model folders.
    #[command(subcommand)]
    Pali(cmd_pali::Command),
    /// Generate text from a PaLI model for an image (or video frames) and a prompt.
    Predict(cmd_predict::Args),
    /// Score predictions in the official formats (COCO captions, VQA, RefCOCO) and print JSON.
    #[command(subcommand)]
    Score(cmd_score::Command),
    /// Rebuild a run's reports (JSON, Markdown, one HTML page with plots and examples), or
    /// compare several runs with --out.
    Report(cmd_report::Args),
    /// Print the token ids a tokenizer gives each text (JSON, one line per text).
    Tokenize(cmd_tokenize::Args),
    /// Bytes per rank (parameters, gradients, optimizer state, activations) of a configured run
    /// at a world size and tensor-parallel degree, and whether it fits on 80 / 141 GiB GPUs.
    Plan(cmd_plan::Args),
    /// Checkpoint folders: merge per-rank optimizer shards (`consolidate`).
    #[command(subcommand)]
    Checkpoint(cmd_checkpoint::Command),
    /// Measure speed.
    #[command(subcommand)]
    Bench(cmd_bench::Command),
    /// Write (and with --run local, train) one run per combination of varied config keys.
    Sweep(cmd_sweep::Args),
    /// Print what this binary runs on: its PyTorch, libtorch, CUDA devices and NCCL.
    Doctor(cmd_doctor::Args),
    /// Start this node's ranks of a multi-process job: `launch --nproc-per-node N -- train CONFIG`.
    Launch(cmd_launch::Args),
}

fn main() {
    let cli = Cli::parse();
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| cli.log.clone());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    // A libtorch of another PyTorch release would crash later inside libtorch: stop now
    // (`doctor` reports the mismatch instead).
    let check = match cli.command {
        Command::Doctor(_) => Ok(()),
        _ => cmd_doctor::check_libtorch(),
    };
    let result = check.and_then(|()| match cli.command {
        Command::Train(a) => cmd_train::run(a),
        Command::Eval(a) => cmd_eval::run(a),
        Command::Data(c) => cmd_data::run(c),
        Command::Import(c) => cmd_import::run(c),
        Command::Export(a) => cmd_export::run(a),
        Command::Forward(a) => cmd_forward::run(a),
        Command::Pali(c) => cmd_pali::run(c),
        Command::Predict(a) => cmd_predict::run(a),
        Command::Score(c) => cmd_score::run(c),
        Command::Report(a) => cmd_report::run(a),
        Command::Tokenize(a) => cmd_tokenize::run(a),
        Command::Plan(a) => cmd_plan::run(a),
        Command::Checkpoint(c) => cmd_checkpoint::run(c),
        Command::Bench(c) => cmd_bench::run(c),
        Command::Launch(a) => cmd_launch::run(a),
        Command::Sweep(a) => cmd_sweep::run(a),
        Command::Doctor(a) => cmd_doctor::run(a),
    });
    if let Err(e) = result {
        eprintln!("error: {}", message(&e));
        std::process::exit(1);
    }
}

/// The error and its causes, each said once: errors that already print their cause (an I/O
/// error naming its path and the OS message) are not followed by that cause again.
fn message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}
