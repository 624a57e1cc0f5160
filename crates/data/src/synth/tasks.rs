//! Task shards from the same synthetic scenes: captioning, VQA (colour, count, shape and
//! position questions) and referring expressions, each in its data spec's layout
//! (`data_specs/caption.yaml`, `vqa.yaml`, `refcoco.yaml`). Scene `i` of a seed is the same image
//! as row `i` of `palisade data synth shapes` with that seed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, Float64Array, Int32Array, ListArray, RecordBatch, StringArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rayon::prelude::*;

use super::columns::{list_array, list_of, utf8};
use super::scene::POSITIONS;
use super::write::{make_row, Row};
use super::ShapesConfig;
use crate::error::{DataError, Result};
use crate::shard_writer::{ShardFormat, ShardWriter};

/// Which task shards to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// `caption` spec: the scene's caption.
    Caption,
    /// `vqa` spec: questions about count, colour, shape and position.
    Vqa,
    /// `refcoco` spec: one expression per object with its box.
    Refcoco,
}

impl Task {
    /// All tasks, in folder order.
    pub const ALL: [Task; 3] = [Task::Caption, Task::Vqa, Task::Refcoco];

    /// Folder and spec name.
    pub fn name(self) -> &'static str {
        match self {
            Task::Caption => "caption",
            Task::Vqa => "vqa",
            Task::Refcoco => "refcoco",
        }
    }
}

/// Shards written per task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TasksSummary {
    /// (task, shards, rows).
    pub tasks: Vec<(Task, Vec<PathBuf>, usize)>,
    /// Every caption, question, answer and expression written (to train a tokenizer on).
    pub texts: Vec<String>,
}

/// One VQA row before it becomes columns.
struct Question {
    scene: usize,
    id: String,
    question: String,
    answer: String,
    question_type: &'static str,
    answer_type: &'static str,
}

/// One referring-expression row.
struct Reference {
    scene: usize,
    ref_id: String,
    expression: String,
    xywh: [f64; 4],
}

fn questions(index: usize, row: &Row) -> Vec<Question> {
    let s = &row.scene;
    let mut out = Vec::new();
    let mut push = |question: String, answer: String, qt: &'static str, at: &'static str| {
        let k = out.len();
        out.push(Question {
            scene: index,
            id: format!("{}-q{k}", row.id),
            question,
            answer,
            question_type: qt,
            answer_type: at,
        });
    };
    push(
        "how many shapes are there?".into(),
        s.objects.len().to_string(),
        "how many",
        "number",
    );
    for o in &s.objects {
        push(
            format!("what color is the {}?", o.shape_name()),
            o.color_name().into(),
            "what color is the",
            "other",
        );
        push(
            format!("what shape is the {} object?", o.color_name()),
            o.shape_name().into(),
            "what shape is the",
            "other",
        );
        push(
            format!("where is the {} {}?", o.color_name(), o.shape_name()),
            o.position_name().into(),
            "where is the",
            "other",
        );
    }
    out
}

fn references(index: usize, row: &Row) -> Vec<Reference> {
    row.scene
        .objects
        .iter()
        .enumerate()
        .map(|(j, o)| {
            // Vary the wording; every variant names colour and shape, which are unique per scene.
            let expression = match (index + j) % 3 {
                0 => format!("{} {}", o.color_name(), o.shape_name()),
                1 => format!(
                    "the {} {} {}",
                    o.size_name(),
                    o.color_name(),
                    o.shape_name()
                ),
                _ => format!(
                    "{} {} at the {}",
                    o.color_name(),
                    o.shape_name(),
                    POSITIONS[o.cell]
                ),
            };
            Reference {
                scene: index,
                ref_id: format!("{}-r{j}", row.id),
                expression,
                xywh: [
                    f64::from(o.x),
                    f64::from(o.y),
                    f64::from(o.w),
                    f64::from(o.h),
                ],
            }
        })
        .collect()
}

/// RefCOCO-style split of a scene: 80% train, 10% val, 5% testA, 5% testB.
fn split_of(index: usize) -> &'static str {
    match index % 20 {
        0 | 1 => "val",
        2 => "testA",
        3 => "testB",
        _ => "train",
    }
}

fn schema(task: Task) -> SchemaRef {
    let image = Field::new("image", DataType::Binary, false);
    Arc::new(Schema::new(match task {
        Task::Caption => vec![
            utf8("id"),
            image,
            list_of("captions", DataType::Utf8),
            utf8("lang"),
            utf8("image_id"),
        ],
        Task::Vqa => vec![
            utf8("id"),
            image,
            utf8("question"),
            list_of("answers", DataType::Utf8),
            utf8("question_id"),
            utf8("question_type"),
            utf8("answer_type"),
            utf8("image_id"),
            utf8("lang"),
        ],
        Task::Refcoco => vec![
            utf8("id"),
            image,
            utf8("expression"),
            list_of("box", DataType::Float64),
            Field::new("width", DataType::Int32, false),
            Field::new("height", DataType::Int32, false),
            utf8("ref_id"),
            utf8("sent_id"),
            utf8("split"),
            utf8("image_id"),
            utf8("lang"),
        ],
    }))
}

fn strings<T>(items: &[T], f: impl Fn(&T) -> String) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(items.iter().map(f)))
}

fn string_lists<T>(
    items: &[T],
    f: impl Fn(&T) -> Vec<String>,
) -> std::result::Result<ArrayRef, String> {
    let lists: Vec<Vec<String>> = items.iter().map(f).collect();
    let values = Arc::new(StringArray::from_iter_values(lists.iter().flatten()));
    list_array(DataType::Utf8, values, lists.iter().map(Vec::len))
}

fn batch(
    task: Task,
    rows: &[Row],
    first: usize,
    size: u32,
) -> std::result::Result<RecordBatch, String> {
    let images = |scenes: &[usize]| -> ArrayRef {
        Arc::new(BinaryArray::from_iter_values(
            scenes.iter().map(|&i| &rows[i - first].png),
        ))
    };
    let image_id = |i: &usize| rows[*i - first].id.clone();
    let columns: Vec<ArrayRef> = match task {
        Task::Caption => {
            let idx: Vec<usize> = (first..first + rows.len()).collect();
            vec![
                strings(&idx, image_id),
                images(&idx),
                string_lists(&idx, |i| vec![rows[*i - first].scene.caption.clone()])?,
                strings(&idx, |_| "en".into()),
                strings(&idx, image_id),
            ]
        }
        Task::Vqa => {
            let qs: Vec<Question> = rows
                .iter()
                .enumerate()
                .flat_map(|(k, r)| questions(first + k, r))
                .collect();
            let scenes: Vec<usize> = qs.iter().map(|q| q.scene).collect();
            vec![
                strings(&qs, |q| q.id.clone()),
                images(&scenes),
                strings(&qs, |q| q.question.clone()),
                // Ten identical human answers, as VQAv2 rows carry ten.
                string_lists(&qs, |q| vec![q.answer.clone(); 10])?,
                strings(&qs, |q| q.id.clone()),
                strings(&qs, |q| q.question_type.into()),
                strings(&qs, |q| q.answer_type.into()),
                strings(&scenes, image_id),
                strings(&qs, |_| "en".into()),
            ]
        }
        Task::Refcoco => {
            let refs: Vec<Reference> = rows
                .iter()
                .enumerate()
                .flat_map(|(k, r)| references(first + k, r))
                .collect();
            let scenes: Vec<usize> = refs.iter().map(|r| r.scene).collect();
            let boxes = {
                let values = Float64Array::from_iter_values(refs.iter().flat_map(|r| r.xywh));
                let offsets = OffsetBuffer::from_lengths(refs.iter().map(|_| 4));
                let field = Arc::new(Field::new_list_field(DataType::Float64, false));
                Arc::new(
                    ListArray::try_new(field, offsets, Arc::new(values), None)
                        .map_err(|e| e.to_string())?,
                ) as ArrayRef
            };
            let side = i32::try_from(size).map_err(|e| e.to_string())?;
            vec![
                strings(&refs, |r| format!("{}-s0", r.ref_id)),
                images(&scenes),
                strings(&refs, |r| r.expression.clone()),
                boxes,
                Arc::new(Int32Array::from_value(side, refs.len())),
                Arc::new(Int32Array::from_value(side, refs.len())),
                strings(&refs, |r| r.ref_id.clone()),
                strings(&refs, |r| format!("{}-s0", r.ref_id)),
                strings(&scenes, |i| split_of(*i).into()),
                strings(&scenes, image_id),
                strings(&refs, |_| "en".into()),
            ]
        }
    };
    RecordBatch::try_new(schema(task), columns).map_err(|e| e.to_string())
}

/// Writes `out_dir/{caption,vqa,refcoco}/` shards for scenes `0..cfg.rows` of `cfg.seed`.
pub fn write_shapes_tasks(out_dir: &Path, cfg: &ShapesConfig) -> Result<TasksSummary> {
    cfg.validate()?;
    let n_shards = cfg.rows.div_ceil(cfg.rows_per_shard);
    let mut tasks = Vec::new();
    let mut texts = Vec::new();
    for task in Task::ALL {
        let dir = out_dir.join(task.name());
        std::fs::create_dir_all(&dir).map_err(|e| DataError::io(&dir, e))?;
        let mut shards = Vec::new();
        let mut count = 0;
        for s in 0..n_shards {
            let path = dir.join(format!("{}-{s:05}-of-{n_shards:05}.parquet", task.name()));
            let mut w = ShardWriter::create(&path, schema(task), &ShardFormat::new(usize::MAX))?;
            let end = ((s + 1) * cfg.rows_per_shard).min(cfg.rows);
            let mut start = s * cfg.rows_per_shard;
            while start < end {
                let stop = (start + cfg.rows_per_group).min(end);
                let rows = (start..stop)
                    .into_par_iter()
                    .map(|i| make_row(i, cfg))
                    .collect::<Result<Vec<_>>>()?;
                let b = batch(task, &rows, start, cfg.image_size).map_err(|message| {
                    DataError::Write {
                        file: path.clone(),
                        message,
                    }
                })?;
                count += b.num_rows();
                w.write(&b)?;
                for (k, r) in rows.iter().enumerate() {
                    match task {
                        Task::Caption => texts.push(r.scene.caption.clone()),
                        Task::Vqa => texts.extend(
                            questions(start + k, r)
                                .into_iter()
                                .flat_map(|q| [q.question, q.answer]),
                        ),
                        Task::Refcoco => {
                            texts.extend(references(start + k, r).into_iter().map(|x| x.expression))
                        }
                    }
                }
                start = stop;
            }
            shards.push(w.finish()?);
        }
        tasks.push((task, shards, count));
    }
    Ok(TasksSummary { tasks, texts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shards::ShardIndex;
    use crate::spec::DataSpec;
    use arrow::array::Array;

    #[test]
    fn task_shards_follow_their_specs_and_describe_the_scenes() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ShapesConfig {
            rows: 30,
            image_size: 16,
            max_objects: 2,
            rows_per_shard: 20,
            rows_per_group: 8,
            seed: 5,
        };
        let summary = write_shapes_tasks(dir.path(), &cfg).unwrap();
        let scenes: Vec<Row> = (0..30).map(|i| make_row(i, &cfg).unwrap()).collect();
        let objects: usize = scenes.iter().map(|r| r.scene.objects.len()).sum();
        let want = [
            (Task::Caption, 30),
            (Task::Vqa, 30 + 3 * objects),
            (Task::Refcoco, objects),
        ];
        for ((task, shards, rows), (wt, wrows)) in summary.tasks.iter().zip(want) {
            assert_eq!((*task, *rows), (wt, wrows));
            assert_eq!(shards.len(), 2);
            let index =
                ShardIndex::build(shards, &DataSpec::embedded(task.name()).unwrap()).unwrap();
            assert_eq!(index.total_rows(), wrows, "{}", task.name());
        }
        // The first VQA question of scene 0 counts its objects; its answers are ten strings.
        let vqa = &summary.tasks[1].1[0];
        let info = crate::shards::ShardInfo::open(vqa).unwrap();
        let b = info
            .read_row_group(0, &["question", "answers", "image"])
            .unwrap();
        let q = b
            .column_by_name("question")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(q.value(0), "how many shapes are there?");
        let answers = b
            .column_by_name("answers")
            .unwrap()
            .as_any()
            .downcast_ref::<ListArray>()
            .unwrap()
            .value(0);
        let answers = answers.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(answers.len(), 10);
        assert_eq!(answers.value(0), scenes[0].scene.objects.len().to_string());
        let img = b
            .column_by_name("image")
            .unwrap()
            .as_any()
            .downcast_ref::<BinaryArray>()
            .unwrap();
        assert_eq!(
            img.value(0),
            scenes[0].png.as_slice(),
            "the same image as the shapes row"
        );
    }
}
