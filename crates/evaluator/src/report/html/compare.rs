//! Several runs (a sweep) side by side: one row per run with its final step, train loss and
//! evaluation metrics, and the config keys whose values differ between runs; as JSON, Markdown
//! and an HTML page with the runs' curves overlaid.

use super::embed::png_data_uri;
use super::markup::{escape, figure, page, table, Cell};
use super::plot::{self, Chart, Line, PALETTE};
use super::runs::{format_logged, significant, Run};
use crate::error::Result;
use crate::report::markdown::md_table;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One run's row.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    /// The config's name.
    pub name: String,
    /// How the tables and legends call it: the name, or the folder when names repeat.
    pub label: String,
    /// The run folder as given.
    pub folder: String,
    /// The config's stage.
    pub stage: Option<String>,
    /// Last step logged or evaluated.
    pub final_step: Option<u64>,
    /// Last logged training loss.
    pub final_train_loss: Option<f64>,
    /// Every final evaluation metric by log name (`eval/i2t_r@1`).
    pub metrics: BTreeMap<String, f64>,
}

/// A config key whose value is not the same in every run.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigDiff {
    /// Dotted key (`train.lr`).
    pub key: String,
    /// Its value in each run, in row order (None: not set in that run).
    pub values: Vec<Option<String>>,
}

/// The comparison written to `comparison.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// One row per run, in the order given.
    pub runs: Vec<RunRow>,
    /// The metric columns of the table: every run's headline metrics.
    pub columns: Vec<String>,
    /// Config keys that differ between runs.
    pub differing_config: Vec<ConfigDiff>,
    /// For each metric column (and `final train loss`), the rows of the best run (several on
    /// a tie; none when every run has the same value): highest, or lowest for losses and
    /// invalid rates. Marked ★ in the tables.
    pub best: BTreeMap<String, Vec<usize>>,
}

/// Varied keys shown as columns of the main table when no more than this many differ (a
/// recipe's stages differ in dozens; those stay in the config-difference table only).
const MAX_KEY_COLUMNS: usize = 6;

/// Whether a lower value of `metric` is better.
fn lower_is_better(metric: &str) -> bool {
    metric.contains("loss") || metric.contains("invalid_rate")
}

/// The row with the best value of each metric, where at least two runs have one.
fn best_rows(rows: &[RunRow], columns: &[String]) -> BTreeMap<String, Vec<usize>> {
    let mut best = BTreeMap::new();
    let mut pick = |key: &str, values: Vec<Option<f64>>| {
        let have: Vec<(usize, f64)> = values
            .into_iter()
            .enumerate()
            .filter_map(|(i, v)| v.filter(|v| v.is_finite()).map(|v| (i, v)))
            .collect();
        if have.len() < 2 {
            return;
        }
        let values = have.iter().map(|(_, v)| *v);
        let top = if lower_is_better(key) {
            values.fold(f64::INFINITY, f64::min)
        } else {
            values.fold(f64::NEG_INFINITY, f64::max)
        };
        let rows: Vec<usize> = have
            .iter()
            .filter(|(_, v)| *v == top)
            .map(|(i, _)| *i)
            .collect();
        if rows.len() < have.len() {
            best.insert(key.to_string(), rows);
        }
    };
    pick(
        "final train loss",
        rows.iter().map(|r| r.final_train_loss).collect(),
    );
    for c in columns {
        pick(c, rows.iter().map(|r| r.metrics.get(c).copied()).collect());
    }
    best
}

impl Comparison {
    /// Compares `runs`.
    pub fn new(runs: &[Run]) -> Comparison {
        let labels = labels(runs);
        let rows: Vec<RunRow> = runs
            .iter()
            .zip(labels)
            .map(|(r, label)| RunRow {
                name: r.name.clone(),
                label,
                folder: r.dir.display().to_string(),
                stage: r.stage.clone(),
                final_step: r.final_step(),
                final_train_loss: r.final_train_loss(),
                metrics: r.final_metrics(),
            })
            .collect();
        let mut columns: Vec<String> = Vec::new();
        for k in runs.iter().flat_map(Run::headline_keys) {
            if !columns.contains(&k) {
                columns.push(k);
            }
        }
        let keys: BTreeSet<&String> = runs.iter().flat_map(|r| r.config.keys()).collect();
        let differing_config = keys
            .into_iter()
            .filter_map(|k| {
                let values: Vec<Option<String>> =
                    runs.iter().map(|r| r.config.get(k).cloned()).collect();
                let differ = values.iter().any(|v| *v != values[0]);
                differ.then(|| ConfigDiff {
                    key: k.clone(),
                    values,
                })
            })
            .collect();
        let best = best_rows(&rows, &columns);
        Comparison {
            runs: rows,
            columns,
            differing_config,
            best,
        }
    }

    /// The varied keys shown as columns of the main table.
    fn key_columns(&self) -> &[ConfigDiff] {
        if self.differing_config.len() <= MAX_KEY_COLUMNS {
            &self.differing_config
        } else {
            &[]
        }
    }

    /// `text`, marked ★ when row `row` is the best of `key`.
    fn mark(&self, key: &str, row: usize, text: String) -> String {
        if self.best.get(key).is_some_and(|rows| rows.contains(&row)) {
            format!("{text} ★")
        } else {
            text
        }
    }

    fn head(&self) -> Vec<String> {
        let mut head: Vec<String> = ["run", "folder", "stage"].map(String::from).to_vec();
        head.extend(self.key_columns().iter().map(|d| d.key.clone()));
        head.extend(["final step", "final train loss"].map(String::from));
        head.extend(self.columns.iter().map(|c| column_name(c)));
        head
    }

    /// Where the numeric columns start in [`Comparison::head`].
    fn numeric_from(&self) -> usize {
        3 + self.key_columns().len()
    }

    fn cells(&self, i: usize) -> Vec<String> {
        let row = &self.runs[i];
        let mut cells = vec![
            row.label.clone(),
            row.folder.clone(),
            row.stage.clone().unwrap_or_else(|| "–".into()),
        ];
        cells.extend(
            self.key_columns()
                .iter()
                .map(|d| d.values[i].clone().unwrap_or_else(|| "–".into())),
        );
        cells.push(row.final_step.map_or("–".into(), |s| s.to_string()));
        let loss = row.final_train_loss.map_or("–".into(), significant);
        cells.push(self.mark("final train loss", i, loss));
        cells.extend(self.columns.iter().map(|c| {
            let v = row
                .metrics
                .get(c)
                .map_or("–".into(), |v| format_logged(c, *v));
            self.mark(c, i, v)
        }));
        cells
    }

    fn diff_head(&self) -> Vec<String> {
        let mut head = vec!["config key".to_string()];
        head.extend(self.runs.iter().map(|r| r.label.clone()));
        head
    }

    fn diff_cells(d: &ConfigDiff) -> Vec<String> {
        let mut cells = vec![d.key.clone()];
        cells.extend(
            d.values
                .iter()
                .map(|v| v.clone().unwrap_or_else(|| "–".into())),
        );
        cells
    }

    /// `comparison.md`.
    pub fn to_markdown(&self) -> String {
        let rows: Vec<Vec<String>> = (0..self.runs.len()).map(|i| self.cells(i)).collect();
        let mut md = format!("# Comparison of {} runs\n\n", self.runs.len());
        md += &md_table(&self.head(), &rows);
        md += "\n★ the best run of a column (highest; lowest for losses and invalid rates).\n";
        md += "\n## Config differences\n\n";
        if self.differing_config.is_empty() {
            md += "The runs' configs are identical.\n";
        } else {
            let rows: Vec<Vec<String>> =
                self.differing_config.iter().map(Self::diff_cells).collect();
            md += &md_table(&self.diff_head(), &rows);
        }
        md
    }

    /// `index.html`: the tables, then the training loss and each headline metric of every run
    /// on shared axes.
    pub fn to_html(&self, runs: &[Run]) -> Result<String> {
        let mut body = format!("<h1>Comparison of {} runs</h1>\n", self.runs.len());
        let head = self.head();
        let head: Vec<&str> = head.iter().map(String::as_str).collect();
        let numeric_from = self.numeric_from();
        let rows: Vec<Vec<Cell>> = (0..self.runs.len())
            .map(|r| {
                self.cells(r)
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        if i >= numeric_from {
                            Cell::num(c)
                        } else {
                            Cell::text(c)
                        }
                    })
                    .collect()
            })
            .collect();
        body += &table("comparison", &head, &rows);
        body +=
            "<p>★ the best run of a column (highest; lowest for losses and invalid rates).</p>\n";
        body += "<h2>Config differences</h2>\n";
        if self.differing_config.is_empty() {
            body += "<p>The runs' configs are identical.</p>\n";
        } else {
            let head = self.diff_head();
            let head: Vec<&str> = head.iter().map(String::as_str).collect();
            let rows: Vec<Vec<Cell>> = self
                .differing_config
                .iter()
                .map(|d| Self::diff_cells(d).iter().map(|c| Cell::text(c)).collect())
                .collect();
            body += &table("config-diff", &head, &rows);
        }
        body += "<h2>Curves</h2>\n<p>";
        for (i, r) in self.runs.iter().enumerate() {
            let [cr, cg, cb] = PALETTE[i % PALETTE.len()].0;
            body += &format!(
                "<span class=\"swatch\" style=\"background:rgb({cr},{cg},{cb})\"></span>{} &nbsp; ",
                escape(&r.label)
            );
        }
        body += "</p>\n<div class=\"grid\">\n";
        let keys = std::iter::once("train/loss".to_string()).chain(self.columns.iter().cloned());
        for key in keys {
            let lines: Vec<Line> = runs
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    let s = r.train.get(&key).or_else(|| r.evals.get(&key))?;
                    Some(Line {
                        points: s.iter().map(|&(x, y)| (x as f64, y)).collect(),
                        color: PALETTE[i % PALETTE.len()],
                    })
                })
                .collect();
            if lines.is_empty() {
                continue;
            }
            let (img, _) = plot::render(&Chart {
                title: key.clone(),
                x_label: "step".into(),
                lines,
            });
            body += &figure(&png_data_uri(&img)?, &key, &key, "plot");
            body += "\n";
        }
        body += "</div>\n";
        Ok(page(
            &format!("Comparison of {} runs", self.runs.len()),
            &body,
        ))
    }
}

/// A metric column's header: the log name without its `eval/` prefix.
fn column_name(key: &str) -> String {
    key.strip_prefix("eval/").unwrap_or(key).to_string()
}

/// Each run's label: its name, or its folder when another run has the same name (a sweep
/// launched from one config with `--run-dir`).
fn labels(runs: &[Run]) -> Vec<String> {
    let count = |f: &dyn Fn(&Run) -> String, r: &Run| runs.iter().filter(|o| f(o) == f(r)).count();
    let name = |r: &Run| r.name.clone();
    let folder = |r: &Run| {
        r.dir.file_name().map_or(r.dir.display().to_string(), |n| {
            n.to_string_lossy().to_string()
        })
    };
    let full = |r: &Run| r.dir.display().to_string();
    runs.iter()
        .map(|r| {
            if count(&name, r) == 1 {
                name(r)
            } else if count(&folder, r) == 1 {
                folder(r)
            } else {
                full(r)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn run(dir: &str, name: &str, lr: &str, loss: f64, r1: f64) -> Run {
        Run {
            dir: PathBuf::from(dir),
            name: name.into(),
            stage: Some("siglip".into()),
            config_text: None,
            config: [
                ("name".to_string(), name.to_string()),
                ("train.lr".to_string(), lr.to_string()),
                ("train.steps".to_string(), "10".to_string()),
            ]
            .into(),
            train: [("train/loss".to_string(), vec![(5, 2.0), (10, loss)])].into(),
            evals: [("eval/i2t_r@1".to_string(), vec![(10, r1)])].into(),
            eval: None,
        }
    }

    #[test]
    fn rows_columns_and_differing_keys() {
        let runs = [
            run("runs/a", "sweep", "0.001", 1.25, 0.5),
            run("runs/b", "sweep", "0.002", 0.75, 0.625),
        ];
        let c = Comparison::new(&runs);
        assert_eq!(c.runs[0].label, "a", "repeated names fall back to folders");
        assert_eq!(c.columns, ["eval/i2t_r@1"]);
        let keys: Vec<&str> = c.differing_config.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(keys, ["train.lr"]);
        let md = c.to_markdown();
        // The varied key is a column; b's lower loss and higher recall are marked best.
        assert!(
            md.contains("| a | runs/a | siglip | 0.001 | 10 | 1.250 | 50.00% |"),
            "{md}"
        );
        assert!(
            md.contains("| b | runs/b | siglip | 0.002 | 10 | 0.7500 ★ | 62.50% ★ |"),
            "{md}"
        );
        assert_eq!(c.best["eval/i2t_r@1"], [1]);
        assert_eq!(c.best["final train loss"], [1]);
        assert!(md.contains("| train.lr | 0.001 | 0.002 |"), "{md}");
        let html = c.to_html(&runs).unwrap();
        assert!(
            html.contains("<table id=\"comparison\">")
                && html.contains("<table id=\"config-diff\">")
        );
        assert_eq!(
            html.matches("<img ").count(),
            2,
            "train/loss and i2t_r@1 overlays"
        );
    }
}
