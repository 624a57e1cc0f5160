//! Reading a run folder: `config.yaml`, `metrics.jsonl` and `report/eval.json`. Each is
//! optional on its own (a run still training has no eval.json), but a folder with none of them
//! is not a run.

use crate::error::{EvalError, Result};
use crate::report::run_folder::{RunFolder, CONFIG_FILE, EVAL_JSON, METRICS_FILE, REPORT_DIR};
use crate::report::EvalReport;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One metric over training: (step, value), sorted by step, one value per step.
pub type Series = Vec<(u64, f64)>;

/// Everything a report is built from.
#[derive(Debug, Clone)]
pub struct Run {
    /// The run folder.
    pub dir: PathBuf,
    /// The config's `name` (else the folder's name).
    pub name: String,
    /// The config's `stage` (`siglip`, `pali`), when known.
    pub stage: Option<String>,
    /// `config.yaml` as written, when present.
    pub config_text: Option<String>,
    /// The config flattened to dotted keys (`train.lr` → `0.002`).
    pub config: BTreeMap<String, String>,
    /// Training metrics (`train/loss`, …) against step.
    pub train: BTreeMap<String, Series>,
    /// Evaluation metrics logged during training (`eval/i2t_r@1`, …) against step.
    pub evals: BTreeMap<String, Series>,
    /// The final evaluation, when the run has one.
    pub eval: Option<EvalReport>,
}

impl Run {
    /// Reads the run folder `dir`.
    pub fn load(dir: &Path) -> Result<Run> {
        let folder = RunFolder::new(dir);
        let config_path = folder.config();
        let metrics_path = folder.metrics();
        let eval_path = folder.eval_json();
        if !dir.is_dir() {
            return Err(EvalError::Invalid(format!(
                "{}: not a folder; give a run folder (with config.yaml and metrics.jsonl)",
                dir.display()
            )));
        }
        if !config_path.exists() && !metrics_path.exists() && !eval_path.exists() {
            return Err(EvalError::Invalid(format!(
                "{}: not a run folder: it has no {CONFIG_FILE}, {METRICS_FILE} or {REPORT_DIR}/{EVAL_JSON}",
                dir.display()
            )));
        }
        let config_text = read_optional(&config_path)?;
        let config_value = match &config_text {
            Some(t) => parse_yaml(&config_path, t)?,
            None => serde_json::Value::Null,
        };
        let mut config = BTreeMap::new();
        flatten("", &config_value, &mut config);
        let (train, evals) = match read_optional(&metrics_path)? {
            Some(t) => parse_metrics(&metrics_path, &t)?,
            None => Default::default(),
        };
        let eval =
            match read_optional(&eval_path)? {
                Some(t) => Some(serde_json::from_str::<EvalReport>(&t).map_err(|e| {
                    EvalError::Malformed {
                        path: eval_path.clone(),
                        line: Some(e.line()),
                        message: json_message(&e),
                    }
                })?),
                None => None,
            };
        let folder_name = dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().to_string()))
            .unwrap_or_else(|| dir.display().to_string());
        Ok(Run {
            dir: dir.to_path_buf(),
            name: config.get("name").cloned().unwrap_or(folder_name),
            stage: config.get("stage").cloned(),
            config_text,
            config,
            train,
            evals,
            eval,
        })
    }

    /// The last step the run logged or evaluated.
    pub fn final_step(&self) -> Option<u64> {
        let logged = self
            .train
            .values()
            .chain(self.evals.values())
            .filter_map(|s| s.last().map(|p| p.0));
        logged.chain(self.eval.as_ref().and_then(|e| e.step)).max()
    }

    /// The last logged training loss.
    pub fn final_train_loss(&self) -> Option<f64> {
        self.train
            .get("train/loss")
            .and_then(|s| s.last())
            .map(|p| p.1)
    }

    /// Final evaluation metrics by log name (`eval/i2t_r@1`): from eval.json when present,
    /// else each metric's last value in the log.
    pub fn final_metrics(&self) -> BTreeMap<String, f64> {
        match &self.eval {
            Some(e) => e.scalars().into_iter().collect(),
            None => self
                .evals
                .iter()
                .filter_map(|(k, s)| s.last().map(|p| (k.clone(), p.1)))
                .collect(),
        }
    }

    /// The metrics a summary shows: Recall@K, zero-shot accuracies and each task's headline
    /// from eval.json; without one, every logged evaluation metric.
    pub fn headline_keys(&self) -> Vec<String> {
        match &self.eval {
            Some(e) => {
                let mut keys: Vec<String> = e
                    .scalars()
                    .into_iter()
                    .map(|(k, _)| k)
                    // `eval/i2t_r@1`, `eval/zeroshot_x`; task metrics (`eval/t/m`) come next,
                    // headline only.
                    .filter(|k| k.split('/').count() == 2)
                    .collect();
                keys.extend(
                    e.tasks
                        .iter()
                        .map(|t| format!("eval/{}/{}", t.name, t.headline)),
                );
                keys
            }
            None => self.evals.keys().cloned().collect(),
        }
    }
}

/// A logged metric for people: `eval/coco/cider` → CIDEr ×100, accuracies and recalls as
/// percentages, anything else (losses, rates) with four significant digits.
pub fn format_logged(key: &str, v: f64) -> String {
    match key.strip_prefix("eval/") {
        // `eval/<task>/<metric>` or `eval/i2t_r@1`: the metric name decides the scale.
        Some(rest) => {
            let metric = rest.split_once('/').map_or(rest, |(_, m)| m);
            crate::report::format_metric(metric, v)
        }
        None => significant(v),
    }
}

/// `v` with four significant digits, scientific when tiny or huge.
pub fn significant(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 || !v.is_finite() {
        format!("{v}")
    } else if !(1e-3..1e6).contains(&a) {
        format!("{v:.3e}")
    } else {
        let decimals = (3 - a.log10().floor() as i64).clamp(0, 6) as usize;
        format!("{v:.decimals$}")
    }
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(EvalError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn parse_yaml(path: &Path, text: &str) -> Result<serde_json::Value> {
    serde_norway::from_str(text).map_err(|e| EvalError::Malformed {
        path: path.to_path_buf(),
        line: e.location().map(|l| l.line()),
        message: e.to_string(),
    })
}

/// serde_json's message without its " at line L column C" tail (we report the line ourselves,
/// and for a JSON-lines file its line 1 is not the file's).
fn json_message(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let text = msg.split(" at line ").next().unwrap_or(&msg);
    format!("{text} (column {})", e.column())
}

/// Splits the log into training and evaluation series by key prefix (`eval/` or not).
fn parse_metrics(
    path: &Path,
    text: &str,
) -> Result<(BTreeMap<String, Series>, BTreeMap<String, Series>)> {
    let (mut train, mut evals) = (BTreeMap::new(), BTreeMap::new());
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| EvalError::Malformed {
            path: path.to_path_buf(),
            line: Some(i + 1),
            message,
        };
        let record: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(line).map_err(|e| bad(json_message(&e)))?;
        let step = record
            .get("step")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| bad("no whole-number \"step\"".into()))?;
        for (k, v) in &record {
            // Non-finite values are logged as null; other non-numbers are not metrics.
            let (true, Some(v)) = (k != "step" && k != "split", v.as_f64()) else {
                continue;
            };
            let into = if k.starts_with("eval/") {
                &mut evals
            } else {
                &mut train
            };
            into.entry(k.clone())
                .or_insert_with(Series::new)
                .push((step, v));
        }
    }
    for s in train.values_mut().chain(evals.values_mut()) {
        tidy(s);
    }
    Ok((train, evals))
}

/// Sorts by step and keeps the last value logged for a step (a resumed run may log it twice).
fn tidy(s: &mut Series) {
    let mut by_step: BTreeMap<u64, f64> = BTreeMap::new();
    for &(step, v) in s.iter() {
        by_step.insert(step, v);
    }
    *s = by_step.into_iter().collect();
}

/// Flattens YAML/JSON into dotted keys; sequences of scalars stay one value (`[1, 5, 10]`),
/// sequences of maps get indices (`eval.zero_shot.0.name`).
pub fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    use serde_json::Value;
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                flatten(&key(k), v, out);
            }
        }
        Value::Array(a) if a.iter().any(|x| x.is_object() || x.is_array()) => {
            for (i, v) in a.iter().enumerate() {
                flatten(&key(&i.to_string()), v, out);
            }
        }
        Value::Null if prefix.is_empty() => {}
        Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_log_splits_sorts_and_names_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = "{\"step\":2,\"split\":\"train\",\"train/loss\":1.5,\"train/lr\":null}\n\
                   {\"step\":1,\"split\":\"train\",\"train/loss\":2.0}\n\
                   \n\
                   {\"step\":2,\"split\":\"eval\",\"eval/i2t_r@1\":0.5}\n";
        std::fs::write(dir.path().join(METRICS_FILE), log).unwrap();
        let run = Run::load(dir.path()).unwrap();
        assert_eq!(run.train["train/loss"], vec![(1, 2.0), (2, 1.5)]);
        assert!(!run.train.contains_key("train/lr"), "nulls are skipped");
        assert_eq!(run.evals["eval/i2t_r@1"], vec![(2, 0.5)]);
        assert_eq!(run.final_step(), Some(2));
        assert_eq!(run.final_train_loss(), Some(1.5));

        std::fs::write(
            dir.path().join(METRICS_FILE),
            format!("{log}{{\"step\": 3, \"train/loss\": }}\n"),
        )
        .unwrap();
        let e = Run::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("metrics.jsonl line 5: expected value"), "{e}");
        std::fs::write(dir.path().join(METRICS_FILE), "{\"train/loss\": 1}\n").unwrap();
        let e = Run::load(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("metrics.jsonl line 1: no whole-number \"step\""),
            "{e}"
        );
    }

    #[test]
    fn bad_eval_json_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(REPORT_DIR)).unwrap();
        std::fs::write(
            dir.path().join("report/eval.json"),
            "{\n  \"step\": 3,\n  \"examples\": \"x\"\n}",
        )
        .unwrap();
        let e = Run::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("eval.json line 3: invalid type"), "{e}");
        let empty = tempfile::tempdir().unwrap();
        let e = Run::load(empty.path()).unwrap_err().to_string();
        assert!(e.contains("not a run folder"), "{e}");
    }

    #[test]
    fn config_flattens_to_dotted_keys() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "name: sweep_a\nstage: pali\ntrain:\n  lr: 0.002\n  steps: 10\neval:\n  recall_at: [1, 5]\n  zero_shot:\n    - name: shape\n",
        )
        .unwrap();
        let run = Run::load(dir.path()).unwrap();
        assert_eq!(run.name, "sweep_a");
        assert_eq!(run.stage.as_deref(), Some("pali"));
        assert_eq!(run.config["train.lr"], "0.002");
        assert_eq!(run.config["eval.recall_at"], "[1,5]");
        assert_eq!(run.config["eval.zero_shot.0.name"], "shape");
        assert!(run.eval.is_none() && run.train.is_empty());
        std::fs::write(dir.path().join(CONFIG_FILE), "name: [unclosed\n").unwrap();
        let e = Run::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("config.yaml line"), "{e}");
    }

    #[test]
    fn logged_metrics_format_like_the_report() {
        assert_eq!(format_logged("eval/coco/cider", 1.234), "123.40");
        assert_eq!(format_logged("eval/i2t_r@1", 0.5), "50.00%");
        assert_eq!(
            format_logged("eval/vqa/vqa_accuracy/yes/no", 0.25),
            "25.00%"
        );
        assert_eq!(format_logged("train/loss", 0.123456), "0.1235");
        assert_eq!(format_logged("train/lr", 0.0002), "2.000e-4");
    }
}
