//! palisade's trainer: experiment configs, optimiser and schedule, the train loop, checkpoints,
//! metric writers (TensorBoard, JSON lines) and the step benchmark.

pub mod batches;
pub mod bench;
pub mod bench_data;
pub mod bench_decode;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod evaluate;
pub mod metrics;
pub mod optimizer;
pub mod schedule;
pub mod setup;
pub mod stage;
pub mod timing;
pub mod train;
pub mod yaml_tree;

pub use config::ExperimentConfig;
pub use error::{Result, TrainerError};
pub use train::{train, TrainOptions, TrainSummary};
