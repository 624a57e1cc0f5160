//! `palisade score`: any model's predictions, in the official result formats, scored against
//! the official reference files — COCO captions, VQA, and RefCOCO (references converted to
//! Parquet by `palisade data convert refcoco`). Missing predictions are reported and count as
//! wrong; a prediction for an unknown id, a duplicate or malformed JSON is an error naming the
//! file and entry.

use crate::captions::{tokenize_for_coco, ImageCaptions};
use crate::error::{MetricsError, Result};
use crate::refcoco::{refcoco_scores, RefExample};
use crate::vqa::{vqa_accuracy, VqaPrediction, VqaQuestion};
use crate::{bleu, cider, rouge};
use palisade_data::loc::{box_to_tokens, NormBox};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

fn bad(path: &Path, msg: String) -> MetricsError {
    MetricsError::Invalid(format!("{}: {msg}", path.display()))
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|source| MetricsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| bad(path, format!("not valid JSON: {e}")))
}

/// An id that official files write as a number or a string, as a string.
fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn entries<'a>(doc: &'a Value, key: Option<&str>, path: &Path) -> Result<&'a Vec<Value>> {
    let list = match key {
        Some(k) => doc.get(k),
        None => Some(doc),
    };
    list.and_then(Value::as_array).ok_or_else(|| {
        bad(
            path,
            format!(
                "expected {}",
                key.map_or("a JSON list".to_string(), |k| format!("a \"{k}\" list"))
            ),
        )
    })
}

fn field<'a>(e: &'a Value, name: &str, path: &Path, i: usize) -> Result<&'a Value> {
    e.get(name)
        .ok_or_else(|| bad(path, format!("entry {i} has no \"{name}\"")))
}

/// Predictions keyed by id (the value under the first of `value_keys` present), refusing
/// duplicates and ids the references do not have.
fn predictions(
    path: &Path,
    id_key: &str,
    value_keys: &[&str],
    known: &dyn Fn(&str) -> bool,
) -> Result<HashMap<String, Value>> {
    let doc = read_json(path)?;
    let mut out = HashMap::new();
    for (i, e) in entries(&doc, None, path)?.iter().enumerate() {
        let id = id_of(field(e, id_key, path, i)?).ok_or_else(|| {
            bad(
                path,
                format!("entry {i}: \"{id_key}\" is not a number or string"),
            )
        })?;
        if !known(&id) {
            return Err(bad(
                path,
                format!("entry {i} ({id_key} {id}): not in the references"),
            ));
        }
        let v = value_keys
            .iter()
            .find_map(|k| e.get(*k))
            .ok_or_else(|| {
                bad(
                    path,
                    format!("entry {i} ({id_key} {id}) has none of {value_keys:?}"),
                )
            })?
            .clone();
        if out.insert(id.clone(), v).is_some() {
            return Err(bad(
                path,
                format!("entry {i} ({id_key} {id}): a second prediction for it"),
            ));
        }
    }
    Ok(out)
}

/// COCO captions: results `[{image_id, caption}]` against a captions annotation file.
pub fn score_captions(predictions_path: &Path, references_path: &Path) -> Result<Value> {
    let refs_doc = read_json(references_path)?;
    let mut refs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, a) in entries(&refs_doc, Some("annotations"), references_path)?
        .iter()
        .enumerate()
    {
        let id = id_of(field(a, "image_id", references_path, i)?)
            .ok_or_else(|| bad(references_path, format!("annotations[{i}]: bad image_id")))?;
        let cap = field(a, "caption", references_path, i)?
            .as_str()
            .ok_or_else(|| {
                bad(
                    references_path,
                    format!("annotations[{i}]: caption is not a string"),
                )
            })?;
        refs.entry(id).or_default().push(cap.to_string());
    }
    let preds = predictions(predictions_path, "image_id", &["caption"], &|id| {
        refs.contains_key(id)
    })?;
    let mut missing = Vec::new();
    let mut images = Vec::with_capacity(refs.len());
    for (id, references) in &refs {
        let candidate = match preds.get(id) {
            Some(v) => v
                .as_str()
                .ok_or_else(|| {
                    bad(
                        predictions_path,
                        format!("image_id {id}: caption is not a string"),
                    )
                })?
                .to_string(),
            None => {
                missing.push(id.clone());
                String::new()
            }
        };
        images.push(ImageCaptions {
            image_id: id.clone(),
            candidate,
            references: references.clone(),
        });
    }
    let tok = tokenize_for_coco(&images);
    let b = bleu::bleu(&tok)?;
    Ok(json!({
        "task": "caption",
        "images": images.len(),
        "missing_predictions": missing.len(),
        "missing_examples": missing.iter().take(10).collect::<Vec<_>>(),
        "CIDEr": cider::cider(&tok)?.score,
        "Bleu_1": b.corpus[0], "Bleu_2": b.corpus[1], "Bleu_3": b.corpus[2], "Bleu_4": b.corpus[3],
        "ROUGE_L": rouge::rouge_l(&tok)?.score,
    }))
}

/// VQA: results `[{question_id, answer}]` against the questions and annotations files.
pub fn score_vqa(
    predictions_path: &Path,
    questions_path: &Path,
    annotations_path: &Path,
) -> Result<Value> {
    let qdoc = read_json(questions_path)?;
    let known: std::collections::HashSet<String> =
        entries(&qdoc, Some("questions"), questions_path)?
            .iter()
            .filter_map(|q| q.get("question_id").and_then(id_of))
            .collect();
    let adoc = read_json(annotations_path)?;
    let mut questions = Vec::new();
    for (i, a) in entries(&adoc, Some("annotations"), annotations_path)?
        .iter()
        .enumerate()
    {
        let qid = field(a, "question_id", annotations_path, i)?
            .as_i64()
            .ok_or_else(|| {
                bad(
                    annotations_path,
                    format!("annotations[{i}]: question_id is not an integer"),
                )
            })?;
        if !known.contains(&qid.to_string()) {
            return Err(bad(
                annotations_path,
                format!(
                    "annotations[{i}]: question {qid} is not in {}",
                    questions_path.display()
                ),
            ));
        }
        let text = |k: &str| {
            a.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let answers = field(a, "answers", annotations_path, i)?
            .as_array()
            .ok_or_else(|| {
                bad(
                    annotations_path,
                    format!("annotations[{i}]: answers is not a list"),
                )
            })?
            .iter()
            .map(|x| {
                x.get("answer")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| {
                        bad(
                            annotations_path,
                            format!("annotations[{i}]: an answer has no text"),
                        )
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        questions.push(VqaQuestion {
            question_id: qid,
            question_type: text("question_type"),
            answer_type: text("answer_type"),
            answers,
        });
    }
    let ids: std::collections::HashSet<String> = questions
        .iter()
        .map(|q| q.question_id.to_string())
        .collect();
    let preds = predictions(predictions_path, "question_id", &["answer"], &|id| {
        ids.contains(id)
    })?;
    let mut missing = 0;
    let predictions: Vec<VqaPrediction> = questions
        .iter()
        .map(|q| {
            let answer = preds
                .get(&q.question_id.to_string())
                .and_then(Value::as_str)
                .map(str::to_string);
            if answer.is_none() {
                missing += 1;
            }
            VqaPrediction {
                question_id: q.question_id,
                answer: answer.unwrap_or_default(),
            }
        })
        .collect();
    let acc = vqa_accuracy(&questions, &predictions)?;
    Ok(json!({
        "task": "vqa",
        "questions": questions.len(),
        "missing_predictions": missing,
        "accuracy": acc.reported.overall,
        "per_answer_type": acc.reported.per_answer_type,
        "per_question_type": acc.reported.per_question_type,
    }))
}

/// RefCOCO: predictions `[{sent_id, prediction: "<loc…>"}]` or `[{sent_id, box: [x, y, w, h]}]`
/// against the refcoco-spec Parquet shards `references` match (files, globs or folders, from
/// `palisade data convert refcoco`).
pub fn score_refcoco<S: AsRef<str>>(predictions_path: &Path, references: &[S]) -> Result<Value> {
    let shards = palisade_data::resolve_all(references, Path::new("."))?;
    let targets: BTreeMap<String, RefRow> = read_refcoco_rows(&shards)?
        .into_iter()
        .map(|r| (r.sent.clone(), r))
        .collect();
    let preds = predictions(predictions_path, "sent_id", &["prediction", "box"], &|id| {
        targets.contains_key(id)
    })?;
    let mut missing = 0;
    let mut examples = Vec::with_capacity(targets.len());
    for (sent, t) in &targets {
        let prediction = match preds.get(sent) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(b)) if b.len() == 4 && b.iter().all(Value::is_number) => {
                // A pixel box is scored through the same tokens a model would write.
                let v: Vec<f64> = b.iter().filter_map(Value::as_f64).collect();
                NormBox::from_coco_xywh([v[0], v[1], v[2], v[3]], t.width, t.height)
                    .and_then(|b| box_to_tokens(&b))
                    .unwrap_or_default()
            }
            Some(other) => {
                return Err(bad(
                    predictions_path,
                    format!(
                        "sent_id {sent}: prediction {other} is neither <loc> text nor [x, y, w, h]"
                    ),
                ))
            }
            None => {
                missing += 1;
                String::new()
            }
        };
        examples.push(RefExample {
            split: t.split.clone(),
            prediction,
            target: t.target,
        });
    }
    let r = refcoco_scores(&examples)?;
    Ok(
        json!({"task": "refcoco", "expressions": examples.len(), "missing_predictions": missing, "overall": r.overall, "per_split": r.per_split}),
    )
}

/// One reference expression.
struct RefRow {
    sent: String,
    split: String,
    target: NormBox,
    width: f64,
    height: f64,
}

/// Every row of refcoco shards.
fn read_refcoco_rows(shards: &[std::path::PathBuf]) -> Result<Vec<RefRow>> {
    let mut out = Vec::new();
    for s in shards {
        let info = palisade_data::ShardInfo::open(s)?;
        palisade_data::DataSpec::embedded("refcoco")?.check_schema(info.schema(), s)?;
        for rg in 0..info.row_groups().len() {
            let b = info.read_row_group(rg, &["sent_id", "split", "box", "width", "height"])?;
            let cols = RefCols::new(&b).ok_or_else(|| {
                MetricsError::Invalid(format!(
                    "{}: row group {rg}: unexpected column types",
                    s.display()
                ))
            })?;
            for row in 0..b.num_rows() {
                let (sent, split, xywh, width, height) = cols.row(row).ok_or_else(|| {
                    MetricsError::Invalid(format!(
                        "{}: row group {rg} row {row}: null or malformed field",
                        s.display()
                    ))
                })?;
                out.push(RefRow {
                    sent,
                    split,
                    target: NormBox::from_coco_xywh(xywh, width, height)?,
                    width,
                    height,
                });
            }
        }
    }
    Ok(out)
}

/// Typed access to the refcoco columns of a record batch.
struct RefCols<'a> {
    sent: arrow_cols::Text<'a>,
    split: arrow_cols::Text<'a>,
    boxes: &'a arrow::array::ListArray,
    width: &'a arrow::array::Int32Array,
    height: &'a arrow::array::Int32Array,
}

mod arrow_cols {
    use arrow::array::{Array, LargeStringArray, StringArray};

    /// A utf8 or large-utf8 column.
    pub enum Text<'a> {
        Small(&'a StringArray),
        Large(&'a LargeStringArray),
    }

    impl<'a> Text<'a> {
        pub fn new(a: &'a dyn Array) -> Option<Text<'a>> {
            let any = a.as_any();
            any.downcast_ref::<StringArray>()
                .map(Text::Small)
                .or_else(|| any.downcast_ref::<LargeStringArray>().map(Text::Large))
        }

        pub fn get(&self, row: usize) -> Option<String> {
            match self {
                Text::Small(a) => a.is_valid(row).then(|| a.value(row).to_string()),
                Text::Large(a) => a.is_valid(row).then(|| a.value(row).to_string()),
            }
        }
    }
}

impl<'a> RefCols<'a> {
    fn new(b: &'a arrow::array::RecordBatch) -> Option<RefCols<'a>> {
        let col = |n: &str| b.column_by_name(n);
        Some(RefCols {
            sent: arrow_cols::Text::new(col("sent_id")?.as_ref())?,
            split: arrow_cols::Text::new(col("split")?.as_ref())?,
            boxes: col("box")?.as_any().downcast_ref()?,
            width: col("width")?.as_any().downcast_ref()?,
            height: col("height")?.as_any().downcast_ref()?,
        })
    }

    fn row(&self, row: usize) -> Option<(String, String, [f64; 4], f64, f64)> {
        use arrow::array::Array;
        let v = self.boxes.value(row);
        let v = arrow::compute::cast(&v, &arrow::datatypes::DataType::Float64).ok()?;
        let f = v.as_any().downcast_ref::<arrow::array::Float64Array>()?;
        let xywh: [f64; 4] = f.values().to_vec().try_into().ok()?;
        Some((
            self.sent.get(row)?,
            self.split.get(row)?,
            xywh,
            f64::from(self.width.value(row)),
            f64::from(self.height.value(row)),
        ))
    }
}
