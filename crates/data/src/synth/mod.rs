//! Synthetic scenes of coloured shapes, and clips of them moving, written as Parquet shards.

mod columns;
mod draw;
mod fits;
mod generate;
mod scene;
mod section;
mod tasks;
mod video;
mod write;

use std::path::{Path, PathBuf};

pub use fits::scene_fits;
pub use generate::Generation;
pub use scene::{COLORS, POSITIONS, SHAPES, SIZES};
pub use section::{has_parquet, write_task_tokenizer, SynthKind, SynthSection};
pub use tasks::{write_shapes_tasks, Task, TasksSummary};
pub use video::{write_video_tasks, VideoConfig, VideoSummary, DIRECTIONS};
pub use write::shapes_schema;

use crate::error::{DataError, Result};

/// Settings for [`write_shapes`] and [`write_shapes_tasks`].
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ShapesConfig {
    /// Scenes to write.
    #[arg(long)]
    pub rows: usize,
    /// Image side in pixels.
    #[arg(long, default_value_t = 64)]
    pub image_size: u32,
    /// Most objects in one scene (1..=9).
    #[arg(long, default_value_t = 2)]
    pub max_objects: usize,
    /// Scenes per Parquet file.
    #[arg(long, default_value_t = 1024)]
    pub rows_per_shard: usize,
    /// Scenes per row group.
    #[arg(long, default_value_t = 256)]
    pub rows_per_group: usize,
    /// Seed; the same seed gives the same shards.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl Default for ShapesConfig {
    fn default() -> Self {
        ShapesConfig {
            rows: 4096,
            image_size: 64,
            max_objects: 2,
            rows_per_shard: 1024,
            rows_per_group: 256,
            seed: 0,
        }
    }
}

impl ShapesConfig {
    /// Checks every field is in range.
    pub fn validate(&self) -> Result<()> {
        if self.rows == 0 {
            return Err(DataError::config("rows", "must be at least 1"));
        }
        if !(8..=4096).contains(&self.image_size) {
            return Err(DataError::config(
                "image_size",
                format!("{} is outside 8..=4096", self.image_size),
            ));
        }
        if !(1..=POSITIONS.len()).contains(&self.max_objects) {
            return Err(DataError::config(
                "max_objects",
                format!("{} is outside 1..={}", self.max_objects, POSITIONS.len()),
            ));
        }
        if self.rows_per_shard == 0 {
            return Err(DataError::config("rows_per_shard", "must be at least 1"));
        }
        if self.rows_per_group == 0 {
            return Err(DataError::config("rows_per_group", "must be at least 1"));
        }
        Ok(())
    }
}

/// What [`write_shapes`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapesSummary {
    /// The shard files, in order.
    pub shards: Vec<PathBuf>,
    /// Rows written over all shards.
    pub rows: usize,
}

/// Writes `cfg.rows` scenes as `out_dir/shapes-XXXXX-of-NNNNN.parquet`.
pub fn write_shapes(out_dir: &Path, cfg: &ShapesConfig) -> Result<ShapesSummary> {
    cfg.validate()?;
    std::fs::create_dir_all(out_dir).map_err(|e| DataError::io(out_dir, e))?;
    let n_shards = cfg.rows.div_ceil(cfg.rows_per_shard);
    let mut shards = Vec::with_capacity(n_shards);
    for s in 0..n_shards {
        let start = s * cfg.rows_per_shard;
        let end = (start + cfg.rows_per_shard).min(cfg.rows);
        let path = out_dir.join(format!("shapes-{s:05}-of-{n_shards:05}.parquet"));
        write::write_shard(&path, start..end, cfg)?;
        tracing::debug!(path = %path.display(), rows = end - start, "wrote shard");
        shards.push(path);
    }
    tracing::info!(dir = %out_dir.display(), shards = n_shards, rows = cfg.rows, "wrote shapes dataset");
    Ok(ShapesSummary {
        shards,
        rows: cfg.rows,
    })
}

#[cfg(test)]
mod tests;
