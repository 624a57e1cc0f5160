//! Evaluates a PaLI model on one benchmark: each rank decodes its share of the held-out rows,
//! every rank's predictions are gathered (CIDEr's document frequencies need every reference),
//! and the whole set is scored the same way on every rank — so the numbers do not depend on the
//! number of ranks.

use crate::config::{DecodeSettings, EvalTask, TaskKind};
use crate::error::{EvalError, Result};
use crate::examples::{self, Thumbnail};
use crate::report::{Example, TaskResult};
use crate::siglip_eval::batch_tensors;
use crate::task_scores::{self, Prediction, REFCOCO_SPLIT, VQA_LABELS};
use palisade_data::{Batch, TextTokenizer};
use palisade_model::decoding::{generate, GenerateConfig, Strategy};
use palisade_model::pali::PaliModel;
use palisade_sharding::ProcessGroup;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use tch::{Kind, Tensor};

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
        let (pixels, ids) = batch_tensors(&b, device);
        let mask = ids.ne(tok.pad_id()).to_kind(Kind::Int64);
        let labels = Tensor::from_slice(&b.target_ids)
            .view([b.size as i64, b.target_len as i64])
            .to_device(device);
        let (out, loss) = tch::no_grad(|| {
            palisade_model::autocast::bf16(cuda, || -> Result<_> {
                let enc = model.encode(&pixels, &ids, &mask)?;
                let out = generate(&model.lm, &enc.states, &enc.mask, gen)?;
                let loss = model.loss_from(&enc, &labels, 0.0)?;
                Ok((out, loss.double_value(&[])))
            })
        })?;
        let tokens = labels.ne(-100).sum(Kind::Int64).int64_value(&[]) as f64;
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
/// `group` together. With `report_dir`, rank 0 writes example images under it; the returned
/// examples (this rank's first rows) name them.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_task(
    group: &dyn ProcessGroup,
    name: &str,
    task: &EvalTask,
    model: &PaliModel,
    tok: &TextTokenizer,
    batches: impl IntoIterator<Item = palisade_data::Result<Batch>>,
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
    let result = TaskResult {
        name: name.to_string(),
        kind: task.kind.name().to_string(),
        examples: all.predictions.len(),
        skipped: all.skipped,
        headline: task.kind.headline().to_string(),
        metrics,
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
