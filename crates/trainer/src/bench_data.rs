//! `bench data`: images per second through the whole input path — read Parquet, decode,
//! resize, normalise, tokenize, batch — excluding start-up.

use crate::error::Result;
use palisade_data::{DataSpec, Loader, LoaderConfig, TextTokenizer};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// What one data benchmark measured.
#[derive(Debug, Clone, Serialize)]
pub struct DataBench {
    /// Decode threads.
    pub threads: usize,
    /// Images produced (after the warm-up batch).
    pub images: usize,
    /// Seconds taken.
    pub seconds: f64,
    /// Throughput.
    pub images_per_sec: f64,
}

/// Reads one full pass of `shards` (webli spec) at `resolution` with `threads` decode threads.
pub fn data(
    shards: Vec<PathBuf>,
    resolution: usize,
    threads: usize,
    batch_size: usize,
) -> Result<DataBench> {
    let tok = Arc::new(TextTokenizer::train(&["a photo of".to_string()], 8)?);
    let cfg = LoaderConfig {
        shards,
        spec: DataSpec::embedded("webli")?,
        tokenizer: tok,
        image_size: resolution,
        text_len: 16,
        batch_size,
        seed: 0,
        shuffle: false,
        label_columns: Vec::new(),
        threads,
    };
    let loader = Loader::new(cfg, 0, 1)?;
    let mut batches = loader.epoch_batches();
    // The first batch pays for opening files and starting threads.
    let _ = batches.next().transpose()?;
    let start = Instant::now();
    let mut images = 0;
    for b in batches {
        images += b?.size;
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(DataBench {
        threads,
        images,
        seconds,
        images_per_sec: images as f64 / seconds.max(1e-9),
    })
}
