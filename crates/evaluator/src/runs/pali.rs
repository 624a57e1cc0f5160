//! Evaluates a PaLI model on one benchmark: each rank decodes its share of the held-out rows,
//! every rank's predictions are gathered (CIDEr's document frequencies need every reference),
//! and the whole set is scored the same way on every rank — so the numbers do not depend on the
//! number of ranks.

use super::{share, EvalSetup};
use crate::config::{DecodeSettings, EvalTask, TaskKind};
use crate::error::{EvalError, Result};
use crate::inputs::PaliInputs;
use crate::report::examples::{self, Thumbnail};
use crate::report::{EvalReport, Example, TaskResult};
use palisade_data::{Batch, Loader, LoaderConfig, RowFormat, ShardIndex, TextTokenizer};
use palisade_metrics::blind::Blind;
use palisade_metrics::task_scores::{self, Prediction, REFCOCO_SPLIT, VQA_LABELS};
use palisade_model::decoding::{generate, GenerateConfig, Strategy};
use palisade_model::pali::PaliModel;
use palisade_sharding::ProcessGroup;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tch::Kind;

/// Decodes and scores every task in `eval.tasks` on every rank of `group` together; `None`
/// when there are none. With `report_dir`, rank 0 writes example images under it.
pub fn evaluate_tasks(
    model: &PaliModel,
    tok: &Arc<TextTokenizer>,
    setup: &EvalSetup,
    group: &dyn ProcessGroup,
    step: Option<u64>,
    report_dir: Option<&Path>,
) -> Result<Option<EvalReport>> {
    let eval = setup.eval;
    if eval.tasks.is_empty() {
        return Ok(None);
    }
    let mut report = EvalReport {
        step,
        examples: 0,
        skipped: 0,
        retrieval: Vec::new(),
        zero_shot: Vec::new(),
        tasks: Vec::new(),
        qualitative: Vec::new(),
    };
    // Open every task's shards first, so a bad path fails before any decoding.
    let mut loaders = Vec::new();
    for (name, task) in &eval.tasks {
        let loader = share(
            task_loader(setup, task, tok, model, group),
            group.world_size(),
        )
        .map_err(|e| EvalError::Invalid(format!("key eval.tasks.{name}: {e}")))?;
        let image_size = model.config().vision_config.image_size;
        let blind = super::blind::fit(setup, name, task, tok, image_size)?;
        loaders.push((name, task, loader, blind));
    }
    for (name, task, loader, blind) in loaders {
        let (result, examples) = evaluate_task(
            group,
            name,
            task,
            model,
            tok,
            loader.iter().flat_map(Loader::epoch_batches),
            blind.as_ref(),
            &eval.decode,
            eval.examples,
            report_dir,
        )?;
        report.examples += result.examples;
        report.skipped += result.skipped;
        report.tasks.push(result);
        report.qualitative.extend(examples);
    }
    Ok(Some(report))
}

/// The row format of a task kind: its prompt (the task's own, else the kind's) and target.
pub fn row_format(task: &EvalTask) -> RowFormat {
    let prompt = |default: &str| task.prompt.clone().unwrap_or_else(|| default.to_string());
    match task.kind {
        TaskKind::Caption | TaskKind::VideoCaption => RowFormat::Caption {
            prompt: prompt(palisade_data::prompts::CAPTION),
        },
        TaskKind::Vqa | TaskKind::VideoQa => RowFormat::Vqa {
            prompt: prompt(palisade_data::prompts::ANSWER),
        },
        TaskKind::Refcoco => RowFormat::Detect {
            prompt: prompt(palisade_data::prompts::DETECT),
        },
    }
}

/// This rank's share of one task's held-out rows, as prompts with their references.
fn task_loader(
    setup: &EvalSetup,
    task: &EvalTask,
    tok: &Arc<TextTokenizer>,
    model: &PaliModel,
    group: &dyn ProcessGroup,
) -> palisade_data::Result<Loader> {
    let spec = setup.data.bound_spec(
        task.spec.as_deref().unwrap_or(task.kind.default_spec()),
        &task.columns,
        "columns",
    )?;
    let shards = palisade_data::resolve_shards(&task.data, Path::new("."))?;
    let index = ShardIndex::build(&shards, &spec)?;
    let labels = label_columns(task.kind, |c| {
        index.shards().iter().all(|s| s.has_column(c))
    });
    let lc = LoaderConfig {
        shards,
        spec,
        tokenizer: tok.clone(),
        image_size: model.config().vision_config.image_size,
        text_len: setup.data.text_len,
        batch_size: setup.eval.batch_size,
        seed: setup.seed,
        shuffle: false,
        label_columns: labels,
        threads: setup.data.threads,
    };
    let loader = Loader::new_task(
        lc,
        row_format(task),
        setup.data.target_len,
        group.rank(),
        group.world_size(),
    )?;
    match task.frames {
        Some(f) => loader.with_max_frames(f),
        None => Ok(loader),
    }
}

/// What one rank's pass over its rows produced.
#[derive(Debug, Default, Serialize, Deserialize)]
struct RankPart {
    predictions: Vec<Prediction>,
    skipped: usize,
    /// Teacher-forced cross-entropy summed over target tokens, and their count.
    loss_sum: f64,
    loss_tokens: f64,
}

/// The label columns a task reads, of those the shards have (`has`).
pub fn label_columns(kind: TaskKind, has: impl Fn(&str) -> bool) -> Vec<String> {
    let wanted: &[&str] = match kind {
        TaskKind::Vqa | TaskKind::VideoQa => &VQA_LABELS,
        TaskKind::Refcoco => &[REFCOCO_SPLIT],
        TaskKind::Caption | TaskKind::VideoCaption => &[],
    };
    wanted
        .iter()
        .filter(|c| has(c))
        .map(|c| c.to_string())
        .collect()
}

/// The generation settings of `d`.
pub fn generate_config(d: &DecodeSettings) -> GenerateConfig {
    GenerateConfig {
        strategy: if d.beams > 1 {
            Strategy::Beam {
                beams: d.beams,
                length_penalty: d.length_penalty,
            }
        } else {
            Strategy::Greedy
        },
        max_new_tokens: d.max_new_tokens,
        use_cache: true,
    }
}

/// Decodes every batch on this rank; keeps the input images of the first `keep` rows.
fn predict(
    model: &PaliModel,
    tok: &TextTokenizer,
    batches: impl IntoIterator<Item = palisade_data::Result<Batch>>,
    gen: &GenerateConfig,
    keep: usize,
) -> Result<(RankPart, Vec<Thumbnail>)> {
    let device = model.vs.device();
    let cuda = device.is_cuda();
    let mut part = RankPart::default();
    let mut thumbs = Vec::new();
    for b in batches {
        let b = b?;
        part.skipped += b.skipped;
        if b.size == 0 {
            continue;
        }
        let x = PaliInputs::new(&b, tok.pad_id(), device);
        let (out, loss) = tch::no_grad(|| {
            palisade_model::autocast::bf16(cuda.then_some(device), || -> Result<_> {
                let enc = model.encode(&x.pixels, &x.ids, &x.mask)?;
                let out = generate(&model.lm, &enc.states, &enc.mask, gen)?;
                let loss = model.loss_from(&enc, &x.labels, 0.0)?;
                Ok((out, loss.double_value(&[])))
            })
        })?;
        let tokens = x.labels.ne(-100).sum(Kind::Int64).int64_value(&[]) as f64;
        part.loss_sum += loss * tokens;
        part.loss_tokens += tokens;
        for (i, generated) in out.iter().enumerate() {
            if thumbs.len() < keep {
                thumbs.push(Thumbnail::from_batch(&b, i));
            }
            part.predictions.push(Prediction {
                id: b.ids[i].clone(),
                prompt: b.texts[i].clone(),
                prediction: tok.decode(generated)?,
                references: b.references[i].clone(),
                target_box: b.target_boxes[i],
                labels: b
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v[i].clone()))
                    .collect(),
            });
        }
    }
    Ok((part, thumbs))
}

/// Every rank's part, merged and sorted by id; a repeated id is an error naming it.
fn gather(group: &dyn ProcessGroup, task: &str, part: RankPart) -> Result<RankPart> {
    let bytes = serde_json::to_vec(&part).map_err(|e| EvalError::Invalid(e.to_string()))?;
    let mut all = RankPart::default();
    for (rank, b) in palisade_sharding::all_gather_bytes(group, &bytes)?
        .into_iter()
        .enumerate()
    {
        let p: RankPart = serde_json::from_slice(&b).map_err(|e| {
            EvalError::Invalid(format!(
                "task {task}: rank {rank} sent unreadable results: {e}"
            ))
        })?;
        all.predictions.extend(p.predictions);
        all.skipped += p.skipped;
        all.loss_sum += p.loss_sum;
        all.loss_tokens += p.loss_tokens;
    }
    all.predictions.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(w) = all.predictions.windows(2).find(|w| w[0].id == w[1].id) {
        return Err(EvalError::Invalid(format!(
            "task {task}: row id {:?} appears more than once in its shards; scoring needs unique ids",
            w[0].id
        )));
    }
    Ok(all)
}

/// Evaluates `model` on one task whose rows for this rank are `batches`, on every rank of
/// `group` together, and the `blind` baseline on the same rows. With `report_dir`, rank 0
/// writes example images under it; the returned examples (this rank's first rows) name them.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_task(
    group: &dyn ProcessGroup,
    name: &str,
    task: &EvalTask,
    model: &PaliModel,
    tok: &TextTokenizer,
    batches: impl IntoIterator<Item = palisade_data::Result<Batch>>,
    blind: Option<&Blind>,
    decode: &DecodeSettings,
    examples_wanted: usize,
    report_dir: Option<&Path>,
) -> Result<(TaskResult, Vec<Example>)> {
    let keep = if report_dir.is_some() {
        examples_wanted
    } else {
        0
    };
    let (part, thumbs) = predict(model, tok, batches, &generate_config(decode), keep)?;
    let all = gather(group, name, part)?;
    if all.predictions.is_empty() {
        return Err(EvalError::Invalid(format!(
            "task {name}: none of its rows could be read ({} skipped)",
            all.skipped
        )));
    }
    let scored = task_scores::score(task.kind, &all.predictions)?;
    let mut metrics = scored.metrics;
    if all.loss_tokens > 0.0 {
        metrics.insert("loss".into(), all.loss_sum / all.loss_tokens);
    }
    let blind = match blind {
        Some(b) => {
            let answered: Vec<Prediction> = all
                .predictions
                .iter()
                .map(|p| Prediction {
                    prediction: b.answer(&p.labels).to_string(),
                    ..p.clone()
                })
                .collect();
            task_scores::score(task.kind, &answered)?.metrics
        }
        None => Default::default(),
    };
    let result = TaskResult {
        name: name.to_string(),
        kind: task.kind.name().to_string(),
        examples: all.predictions.len(),
        skipped: all.skipped,
        headline: task.kind.headline().to_string(),
        metrics,
        blind,
    };
    let by_id: HashMap<&str, (usize, &Prediction)> = all
        .predictions
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.as_str(), (i, p)))
        .collect();
    let mut out = Vec::new();
    if let (Some(dir), 0) = (report_dir, group.rank()) {
        for (k, th) in thumbs.iter().enumerate() {
            let Some(&(i, p)) = by_id.get(th.id.as_str()) else {
                continue;
            };
            let file = examples::write_thumbnail(dir, name, k, th)?;
            out.push(Example {
                task: name.to_string(),
                id: p.id.clone(),
                prompt: p.prompt.clone(),
                prediction: p.prediction.clone(),
                references: p.references.clone(),
                score: Some(scored.per_example[i]),
                image: Some(file),
                frames: th.frames,
                predicted_box: (task.kind == TaskKind::Refcoco)
                    .then(|| palisade_data::loc::tokens_to_box(&p.prediction).ok())
                    .flatten(),
                true_box: p.target_box,
            });
        }
    }
    Ok((result, out))
}
