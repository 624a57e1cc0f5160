//! A run folder's layout, the one place it is defined: the trainer writes into it, the reports
//! read from it.
//!
//! ```text
//! RUN/config.yaml          the fully resolved experiment config
//! RUN/metrics.jsonl        one JSON object per logged step (train and eval scalars)
//! RUN/tb/                  TensorBoard event files of the same scalars
//! RUN/checkpoints/step-N/  model folder + optimizer state + state.json + experiment.yaml
//! RUN/report/              eval.json, eval.md, index.html, examples/*.png
//! ```

use std::path::{Path, PathBuf};

/// The resolved config.
pub const CONFIG_FILE: &str = "config.yaml";
/// The metric log.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// TensorBoard's folder.
pub const TB_DIR: &str = "tb";
/// The checkpoints' folder.
pub const CHECKPOINTS_DIR: &str = "checkpoints";
/// The report folder.
pub const REPORT_DIR: &str = "report";
/// The final evaluation, for machines (in the report folder).
pub const EVAL_JSON: &str = "eval.json";
/// The final evaluation, for people (in the report folder).
pub const EVAL_MD: &str = "eval.md";
/// The report page (in the report folder).
pub const INDEX_HTML: &str = "index.html";
/// Example images (in the report folder).
pub const EXAMPLES_DIR: &str = "examples";

/// The paths of one run folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFolder {
    /// The folder itself.
    pub root: PathBuf,
}

impl RunFolder {
    /// The run folder at `root`.
    pub fn new(root: impl Into<PathBuf>) -> RunFolder {
        RunFolder { root: root.into() }
    }

    /// `config.yaml`.
    pub fn config(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }

    /// `metrics.jsonl`.
    pub fn metrics(&self) -> PathBuf {
        self.root.join(METRICS_FILE)
    }

    /// `tb/`.
    pub fn tb(&self) -> PathBuf {
        self.root.join(TB_DIR)
    }

    /// `checkpoints/`.
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join(CHECKPOINTS_DIR)
    }

    /// `report/`.
    pub fn report(&self) -> PathBuf {
        self.root.join(REPORT_DIR)
    }

    /// `report/eval.json`.
    pub fn eval_json(&self) -> PathBuf {
        self.report().join(EVAL_JSON)
    }

    /// `report/eval.md`.
    pub fn eval_md(&self) -> PathBuf {
        self.report().join(EVAL_MD)
    }

    /// `report/index.html`.
    pub fn index_html(&self) -> PathBuf {
        self.report().join(INDEX_HTML)
    }
}

impl AsRef<Path> for RunFolder {
    fn as_ref(&self) -> &Path {
        &self.root
    }
}
