//! Metric writers: JSON lines (`metrics.jsonl`) and TensorBoard event files (`tb/`), fed together.

pub mod tensorboard;

use crate::error::{io_at, Result};
use palisade_evaluator::RunFolder;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use tensorboard::EventWriter;

/// Writes each logged set of scalars to both sinks.
#[derive(Debug)]
pub struct MetricsLog {
    jsonl: File,
    jsonl_path: PathBuf,
    tb: EventWriter,
}

impl MetricsLog {
    /// Opens the sinks in `run_dir`. When resuming from `resume_step`, records of later steps
    /// (which the resumed run will redo) are dropped from `metrics.jsonl` first.
    pub fn open(run: &RunFolder, resume_step: Option<u64>) -> Result<MetricsLog> {
        let jsonl_path = run.metrics();
        if let (Some(step), true) = (resume_step, jsonl_path.exists()) {
            truncate_after(&jsonl_path, step)?;
        }
        let jsonl = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&jsonl_path)
            .map_err(io_at(&jsonl_path))?;
        let tb_dir = run.tb();
        let tb = EventWriter::create(&tb_dir).map_err(io_at(&tb_dir))?;
        Ok(MetricsLog {
            jsonl,
            jsonl_path,
            tb,
        })
    }

    /// Logs `values` at `step` under `split` (`train`, `eval`).
    pub fn log(&mut self, step: u64, split: &str, values: &[(String, f64)]) -> Result<()> {
        let mut obj = serde_json::Map::new();
        obj.insert("step".into(), step.into());
        obj.insert("split".into(), split.into());
        for (k, v) in values {
            obj.insert(
                k.clone(),
                serde_json::Number::from_f64(*v)
                    .map(Into::into)
                    .unwrap_or(serde_json::Value::Null),
            );
        }
        writeln!(self.jsonl, "{}", serde_json::Value::Object(obj))
            .map_err(io_at(&self.jsonl_path))?;
        let pairs: Vec<(&str, f64)> = values.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        self.tb
            .scalars(step, &pairs)
            .map_err(io_at(self.tb.path()))?;
        Ok(())
    }

    /// Pushes both sinks to disk.
    pub fn flush(&mut self) -> Result<()> {
        self.jsonl.flush().map_err(io_at(&self.jsonl_path))?;
        self.tb.flush().map_err(io_at(self.tb.path()))
    }
}

/// Keeps only records with `step <= last` (rewritten through a temporary file); a record a
/// killed process left half-written (not JSON) is dropped too.
fn truncate_after(path: &Path, last: u64) -> Result<()> {
    let f = File::open(path).map_err(io_at(path))?;
    let mut kept = String::new();
    for line in BufReader::new(f).lines() {
        let line = line.map_err(io_at(path))?;
        let Ok(record) = serde_json::from_str::<serde_json::Value>(&line) else {
            tracing::warn!("{}: dropped a torn record: {line:?}", path.display());
            continue;
        };
        if record["step"].as_u64().is_none_or(|s| s <= last) {
            kept.push_str(&line);
            kept.push('\n');
        }
    }
    Ok(palisade_files::write(path, kept)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_drops_records_after_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunFolder::new(dir.path());
        let mut m = MetricsLog::open(&run, None).unwrap();
        for s in [1, 2, 3] {
            m.log(s, "train", &[("loss".into(), s as f64)]).unwrap();
        }
        m.flush().unwrap();
        drop(m);
        // A kill -9 in the middle of a write leaves a torn last record.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(run.metrics())
            .unwrap();
        std::io::Write::write_all(&mut f, b"{\"step\":4,\"train/lo").unwrap();
        drop(f);
        let _m = MetricsLog::open(&run, Some(2)).unwrap();
        let text = std::fs::read_to_string(run.metrics()).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.contains("\"loss\":2.0"));
    }
}
