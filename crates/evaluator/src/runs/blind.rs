//! Fits a PaLI task's blind baseline ([`palisade_metrics::blind`]) on its training rows: the
//! task's own `baseline_data`, else the experiment's mixture sources of the same kind (the one
//! named like the task when there is one). Only text columns are read.

use super::EvalSetup;
use crate::config::{EvalTask, TaskKind};
use crate::error::{EvalError, Result};
use palisade_data::loader::FRAMES_COLUMN;
use palisade_data::{DataSpec, Loader, LoaderConfig, RowFormat, TextTokenizer};
use palisade_metrics::blind::{self, Blind};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

/// Rows read per training source at most: enough for stable answer counts and mean boxes,
/// and bounded on a WebLI-sized caption mixture.
const MAX_ROWS: usize = 100_000;

/// The blind baseline of task `name`, or `None` when it has no training data to fit on.
pub fn fit(
    setup: &EvalSetup,
    name: &str,
    task: &EvalTask,
    tok: &Arc<TextTokenizer>,
    image_size: usize,
) -> Result<Option<Blind>> {
    let sources = sources(setup, name, task)?;
    if sources.is_empty() {
        return Ok(None);
    }
    // The training text does not change during a run: periodic evaluations reuse the fit.
    static FITTED: OnceLock<Mutex<HashMap<String, Blind>>> = OnceLock::new();
    let key = format!("{:?} {sources:?}", task.kind);
    let fitted = FITTED.get_or_init(Default::default);
    if let Some(b) = fitted.lock().expect("fitted baselines").get(&key) {
        return Ok(Some(b.clone()));
    }
    let mut rows = Vec::new();
    for (data, spec, columns, format) in sources {
        let at = |e: palisade_data::DataError| {
            EvalError::Invalid(format!(
                "key eval.tasks.{name}: blind baseline from {data}: {e}"
            ))
        };
        let spec = setup
            .data
            .bound_spec(&spec, &columns, "columns")
            .map_err(at)?;
        let shards = palisade_data::resolve_shards(&data, Path::new(".")).map_err(at)?;
        let index = palisade_data::ShardIndex::build(&shards, &spec).map_err(at)?;
        let labels = super::pali::label_columns(task.kind, |c| {
            index.shards().iter().all(|s| s.has_column(c))
        });
        let lc = LoaderConfig {
            shards,
            spec,
            tokenizer: tok.clone(),
            image_size,
            text_len: setup.data.text_len,
            batch_size: 1,
            seed: setup.seed,
            shuffle: false,
            label_columns: labels,
            threads: 1,
        };
        let loader =
            Loader::new_task(lc, format, setup.data.target_len.max(1), 0, 1).map_err(at)?;
        rows.extend(loader.texts(MAX_ROWS).map_err(at)?);
    }
    let b = blind::fit(task.kind, &rows)?;
    fitted
        .lock()
        .expect("fitted baselines")
        .insert(key, b.clone());
    Ok(Some(b))
}

/// A training source: shards, spec, column mapping, row format.
type TrainSource = (String, String, BTreeMap<String, String>, RowFormat);

/// The training data the baseline is fitted on.
fn sources(setup: &EvalSetup, name: &str, task: &EvalTask) -> Result<Vec<TrainSource>> {
    let format = super::pali::row_format(task);
    if let Some(data) = &task.baseline_data {
        if data == "none" {
            return Ok(Vec::new());
        }
        let spec = task
            .spec
            .clone()
            .unwrap_or_else(|| task.kind.default_spec().into());
        return Ok(vec![(data.clone(), spec, task.columns.clone(), format)]);
    }
    let mut matching = Vec::new();
    for (source_name, s) in &setup.data.mixture {
        let video = DataSpec::named(&s.spec)
            .map_err(|e| EvalError::Invalid(format!("key data.mixture.{source_name}.spec: {e}")))?
            .columns
            .iter()
            .any(|c| c.name == FRAMES_COLUMN);
        if same_kind(task.kind, &s.format) && video == task.kind.is_video() {
            matching.push((
                source_name,
                (
                    s.train.clone(),
                    s.spec.clone(),
                    s.columns.clone(),
                    s.format.clone(),
                ),
            ));
        }
    }
    if let Some((_, named)) = matching.iter().find(|(n, _)| n.as_str() == name) {
        return Ok(vec![named.clone()]);
    }
    Ok(matching.into_iter().map(|(_, s)| s).collect())
}

/// Whether training rows of `format` are the kind of rows a `kind` task scores.
fn same_kind(kind: TaskKind, format: &RowFormat) -> bool {
    matches!(
        (kind, format),
        (
            TaskKind::Caption | TaskKind::VideoCaption,
            RowFormat::Caption { .. }
        ) | (TaskKind::Vqa | TaskKind::VideoQa, RowFormat::Vqa { .. })
            | (TaskKind::Refcoco, RowFormat::Detect { .. })
    )
}
