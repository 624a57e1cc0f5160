//! palisade's trainer: the experiment config (composing each crate's section), the stage
//! registry (`stages/`), the parallelism layer (`parallel/`), optimiser and schedule, the train
//! loop, checkpoint evaluation, checkpoints, metric writers (TensorBoard, JSON lines), model
//! folders made by commands, and the benchmarks.

pub mod accumulate;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod device;
pub mod ema;
pub mod error;
pub mod evaluate;
mod experiment;
pub mod job;
pub mod metrics;
pub mod model_folders;
pub mod optimizer;
pub mod parallel;
pub mod plan;
pub mod predict;
pub mod preempt;
pub mod preflight;
pub mod recipe;
pub mod resume;
pub mod schedule;
pub mod stages;
pub mod sweep;
pub mod train;
pub mod yaml_tree;

pub use config::ExperimentConfig;
pub use error::{Result, TrainerError};
pub use evaluate::{evaluate, Evaluated};
pub use train::{train, End, TrainOptions, TrainSummary};
