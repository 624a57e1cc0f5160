//! Evaluation metrics, evaluation runs and reports.
//!
//! Metrics are plain functions over scores and labels; runs embed data with a model and call them;
//! reports turn the results into JSON (for machines) and Markdown (for people); `html` rebuilds
//! a run's reports, with plots and examples in one HTML page, and compares runs.

pub mod config;
pub mod error;
pub mod examples;
pub mod html;
pub mod metrics;
pub mod pali_eval;
pub mod report;
pub mod retrieval;
pub mod score;
pub mod siglip_eval;
pub mod task_scores;
pub mod zero_shot;

pub use config::{DecodeSettings, EvalConfig, EvalTask, TaskKind, ZeroShotTask};
pub use error::{EvalError, Result};
pub use report::{EvalReport, Example, RetrievalResult, TaskResult, ZeroShotResult};
