//! Reports rebuilt from a run folder's files (`palisade report`): `report/eval.json` for
//! machines, `report/eval.md`, and `report/index.html`, one self-contained page with PNG plots
//! (drawn here, no font files needed) and qualitative examples; and a sweep's comparison.
//!
//! Every output is built in memory before the first file is replaced, and each file is
//! replaced by a rename, so an error never leaves a report half-written or destroyed.

pub mod compare;
pub mod embed;
pub mod markup;
pub mod page;
pub mod plot;
pub mod runs;
pub mod text;
pub mod thumb;

pub use compare::Comparison;
pub use runs::Run;

use crate::error::{EvalError, Result};
use crate::report::run_folder::{RunFolder, EVAL_JSON, EVAL_MD, INDEX_HTML};
use std::path::{Path, PathBuf};

/// Rebuilds the report of the run in `run_dir` inside `run_dir/report/`; returns the files
/// written (eval.json and eval.md only when the run has a final evaluation).
pub fn write_run_report(run_dir: &Path) -> Result<Vec<PathBuf>> {
    let run = Run::load(run_dir)?;
    let html = page::run_page(&run)?;
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    let dir = RunFolder::new(run_dir).report();
    if let Some(e) = &run.eval {
        files.push((dir.join(EVAL_JSON), e.to_json()?));
        files.push((dir.join(EVAL_MD), e.to_markdown(&e.title(&run.name))));
    }
    files.push((dir.join(INDEX_HTML), html));
    write_all(&dir, files)
}

/// Compares the runs in `run_dirs`, writing `index.html`, `comparison.md` and
/// `comparison.json` into `out` (created if needed); returns the files written.
pub fn write_comparison(run_dirs: &[PathBuf], out: &Path) -> Result<Vec<PathBuf>> {
    let runs = run_dirs
        .iter()
        .map(|d| Run::load(d))
        .collect::<Result<Vec<Run>>>()?;
    let c = Comparison::new(&runs);
    let json = serde_json::to_string_pretty(&c).map_err(|e| EvalError::Invalid(e.to_string()))?;
    let files = vec![
        (out.join("comparison.json"), json),
        (out.join("comparison.md"), c.to_markdown()),
        (out.join(INDEX_HTML), c.to_html(&runs)?),
    ];
    write_all(out, files)
}

/// Creates `dir` and writes each file atomically, in order.
fn write_all(dir: &Path, files: Vec<(PathBuf, String)>) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|source| EvalError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for (path, text) in files {
        palisade_files::write(&path, text)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_log_leaves_the_existing_report_untouched() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(crate::report::run_folder::METRICS_FILE),
            "{\"step\":1,\"train/loss\":2}\n",
        )
        .unwrap();
        let written = write_run_report(dir.path()).unwrap();
        assert_eq!(written, [dir.path().join("report/index.html")]);
        let before = std::fs::read_to_string(&written[0]).unwrap();
        assert!(
            before.contains("<img class=\"plot\""),
            "the curve is drawn without eval.json"
        );

        std::fs::write(
            dir.path().join(crate::report::run_folder::METRICS_FILE),
            "{\"step\":1,\"train/loss\":2}\nnot json\n",
        )
        .unwrap();
        let e = write_run_report(dir.path()).unwrap_err().to_string();
        assert!(e.contains("metrics.jsonl line 2"), "{e}");
        assert_eq!(std::fs::read_to_string(&written[0]).unwrap(), before);
    }
}
