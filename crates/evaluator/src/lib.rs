//! Evaluation runs and reports.
//!
//! Runs (`runs`) put a model over held-out data on every rank together and score the whole set
//! with palisade-metrics' scorers: SigLIP retrieval and zero-shot on image-text pairs, PaLI's
//! benchmarks (captioning, VQA, RefCOCO, video), and single-example prediction. Reports
//! (`report`) turn the results into JSON, Markdown and one HTML page, own the run-folder layout,
//! and compare sweeps. `inputs` builds model inputs from batches for training and evaluation.

pub mod config;
pub mod error;
pub mod inputs;
pub mod report;
pub mod runs;

pub use config::{DecodeSettings, EvalConfig, EvalTask, TaskKind, ZeroShotTask};
pub use error::{EvalError, Result};
pub use report::html;
pub use report::{EvalReport, Example, RetrievalResult, RunFolder, TaskResult, ZeroShotResult};
pub use runs::EvalSetup;
