//! `palisade tokenize`.

use anyhow::Result;
use std::path::PathBuf;

/// Arguments of `palisade tokenize`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// tokenizer.json (any Hugging Face tokenizer) or a SentencePiece .model file.
    #[arg(long)]
    tokenizer: PathBuf,
    /// Texts to tokenize.
    #[arg(required = true)]
    texts: Vec<String>,
}

/// Prints, for each text, one JSON array of the ids the model would see, one per line.
pub fn run(a: Args) -> Result<()> {
    for ids in palisade_data::tokenizer::tokenize_texts(&a.tokenizer, &a.texts)? {
        println!("{}", serde_json::to_string(&ids)?);
    }
    Ok(())
}
