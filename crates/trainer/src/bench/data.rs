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

/// The input-path benchmark (`bench data`) over webli shards.
#[derive(Debug, Clone, clap::Args)]
pub struct DataShape {
    /// Parquet files or globs.
    #[arg(required = true)]
    pub shards: Vec<String>,
    /// Model input resolution.
    #[arg(long, default_value_t = 224)]
    pub resolution: usize,
    /// Decode threads (repeat to measure several, e.g. --threads 1 --threads 2).
    #[arg(long, default_values_t = [1])]
    pub threads: Vec<usize>,
    /// Batch size.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
}

impl DataBench {
    /// One line for people.
    pub fn summary(&self) -> String {
        format!(
            "{} threads: {:.1} images/s ({} images in {:.2} s)",
            self.threads, self.images_per_sec, self.images, self.seconds
        )
    }
}

/// One full pass of the shards at the resolution for each count of decode threads, in order.
pub fn data_threads(shape: &DataShape) -> Result<Vec<DataBench>> {
    let shards = palisade_data::resolve_all(&shape.shards, std::path::Path::new("."))?;
    shape
        .threads
        .iter()
        .map(|&t| data(shards.clone(), shape.resolution, t, shape.batch))
        .collect()
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
