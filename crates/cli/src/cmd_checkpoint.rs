//! `palisade checkpoint`: operations on checkpoint folders.

use anyhow::Result;
use std::path::PathBuf;

/// Checkpoint subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Write a checkpoint with its per-rank optimizer shards merged into one
    /// optimizer.safetensors (the model folder's files as they are) to a new folder.
    Consolidate {
        /// The checkpoint folder (`RUN/checkpoints/step-N`).
        dir: PathBuf,
        /// Output folder (created; must not exist).
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs a checkpoint subcommand.
pub fn run(c: Command) -> Result<()> {
    match c {
        Command::Consolidate { dir, out } => {
            let n = palisade_trainer::checkpoint::consolidate(&dir, &out)?;
            println!(
                "{}: {n} optimizer entries in one file, beside the model folder",
                out.display()
            );
            Ok(())
        }
    }
}
