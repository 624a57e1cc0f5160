//! Turning a batch of entries into rows: their images read in parallel, rows written in order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::image_file::read_image;
use super::skips::{entry_error, Skips};
use super::writer::{ConvertRow, DatasetWriter};
use crate::error::Result;

/// A validated source entry waiting for its image.
pub(crate) trait Job {
    /// The row type the entry becomes.
    type Row: ConvertRow;
    /// The entry, for messages (index and id).
    fn entry(&self) -> String;
    /// The image file it needs.
    fn image_path(&self) -> &Path;
    /// Its rows, given the image bytes.
    fn rows(&self, image: &[u8]) -> Vec<Self::Row>;
}

/// Reads the distinct images of `jobs` in parallel, then writes their rows in job order.
///
/// `source` is the annotation file the jobs came from, named in image errors.
pub(crate) fn write_jobs<J: Job>(
    jobs: &[J],
    source: &Path,
    writer: &mut DatasetWriter<J::Row>,
    skips: &mut Skips,
) -> Result<()> {
    // Several questions or expressions often share one image: read it once per batch.
    let mut paths: Vec<&Path> = jobs.iter().map(J::image_path).collect();
    paths.sort_unstable();
    paths.dedup();
    let images: HashMap<PathBuf, std::result::Result<Vec<u8>, String>> = paths
        .par_iter()
        .map(|p| (p.to_path_buf(), read_image(p)))
        .collect();
    for job in jobs {
        let image = match images.get(job.image_path()) {
            Some(Ok(bytes)) => Ok(bytes.as_slice()),
            Some(Err(message)) => Err(entry_error(source, job.entry(), message.clone())),
            None => Err(entry_error(source, job.entry(), "image was not read")),
        };
        if let Some(bytes) = skips.handle(image)? {
            for row in job.rows(bytes) {
                writer.push(row)?;
            }
        }
    }
    Ok(())
}
