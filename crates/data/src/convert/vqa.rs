//! VQAv2 (questions JSON, optional annotations JSON, COCO image folder) to `vqa` shards: one row
//! per question with the ten human answers and the consensus `multiple_choice_answer`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::json_entries::{parse_entry, parse_top, read_file, Id};
use super::pipeline::{write_jobs, Job};
use super::schemas::VqaRow;
use super::skips::{entry_error, Skips};
use super::writer::DatasetWriter;
use super::{ConvertConfig, ConvertSummary};
use crate::error::{DataError, Result};

/// VQAv2 has ten human answers per question.
const MAX_ANSWERS: usize = 10;

/// Inputs of [`convert_vqa`].
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct VqaSource {
    /// `v2_OpenEnded_mscoco_{split}_questions.json`.
    #[arg(long)]
    pub questions: PathBuf,
    /// `v2_mscoco_{split}_annotations.json`; absent for test splits (answers stay empty).
    #[arg(long)]
    pub annotations: Option<PathBuf>,
    /// The COCO image folder (`train2014/`, `val2014/`, `test2015/`).
    #[arg(long)]
    pub images: PathBuf,
    /// Image file subtype in `COCO_{subtype}_{image_id:012}.jpg`; default: the questions file's
    /// `data_subtype` (test-dev's images live under `test2015`, so pass that there).
    #[arg(long)]
    pub subtype: Option<String>,
    /// Language of questions and answers.
    #[arg(long, default_value = "en")]
    pub lang: String,
}

#[derive(Deserialize)]
struct QuestionsTop<'a> {
    #[serde(default)]
    data_subtype: Option<String>,
    #[serde(borrow)]
    questions: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct Question {
    image_id: Id,
    question: String,
    question_id: Id,
}

#[derive(Deserialize)]
struct AnnotationsTop<'a> {
    #[serde(borrow)]
    annotations: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct Annotation {
    question_id: Id,
    image_id: Id,
    question_type: String,
    answer_type: String,
    multiple_choice_answer: String,
    answers: Vec<Answer>,
}

#[derive(Deserialize)]
struct Answer {
    answer: String,
}

/// One question with its answers, waiting for its image.
struct VqaJob {
    index: usize,
    path: PathBuf,
    row: VqaRow,
}

impl Job for VqaJob {
    type Row = VqaRow;

    fn entry(&self) -> String {
        format!(
            "questions[{}] (question_id {})",
            self.index, self.row.question_id
        )
    }

    fn image_path(&self) -> &Path {
        &self.path
    }

    fn rows(&self, image: &[u8]) -> Vec<VqaRow> {
        vec![VqaRow {
            image: image.to_vec(),
            ..self.row.clone()
        }]
    }
}

/// Converts VQAv2 questions (and answers) to `vqa` shards.
pub fn convert_vqa(src: &VqaSource, cfg: &ConvertConfig) -> Result<ConvertSummary> {
    let qfile = src.questions.as_path();
    let qbytes = read_file(qfile)?;
    let qtop: QuestionsTop = parse_top(qfile, &qbytes)?;
    let subtype = src.subtype.clone().or(qtop.data_subtype).ok_or_else(|| {
        DataError::config(
            "subtype",
            format!(
                "{} has no data_subtype; pass the image subtype (e.g. val2014)",
                qfile.display()
            ),
        )
    })?;
    let mut skips = Skips::new(cfg.skip_missing);
    let answers = match &src.annotations {
        Some(afile) => Some(read_annotations(afile, &mut skips)?),
        None => None,
    };
    let mut jobs = Vec::with_capacity(qtop.questions.len());
    for (index, raw) in qtop.questions.iter().enumerate() {
        let Some(q) = skips.handle(parse_entry::<Question>(qfile, "questions", index, raw))? else {
            continue;
        };
        let entry = format!("questions[{index}] (question_id {})", q.question_id);
        let job = make_job(index, q, answers.as_ref(), &subtype, src)
            .map_err(|m| entry_error(qfile, entry, m));
        if let Some(job) = skips.handle(job)? {
            jobs.push(job);
        }
    }
    let mut writer = DatasetWriter::<VqaRow>::new(cfg)?;
    for chunk in jobs.chunks(cfg.rows_per_group) {
        write_jobs(chunk, qfile, &mut writer, &mut skips)?;
    }
    let rows = writer.rows();
    let shards = writer.finish(qfile)?;
    Ok(skips.summary(shards, rows))
}

fn read_annotations(file: &Path, skips: &mut Skips) -> Result<HashMap<Id, Annotation>> {
    let bytes = read_file(file)?;
    let top: AnnotationsTop = parse_top(file, &bytes)?;
    let mut by_question = HashMap::with_capacity(top.annotations.len());
    for (index, raw) in top.annotations.iter().enumerate() {
        let parsed = parse_entry::<Annotation>(file, "annotations", index, raw);
        let Some(ann) = skips.handle(parsed)? else {
            continue;
        };
        if ann.answers.len() > MAX_ANSWERS {
            let err = entry_error(
                file,
                format!("annotations[{index}] (question_id {})", ann.question_id),
                format!(
                    "has {} answers, at most {MAX_ANSWERS} expected",
                    ann.answers.len()
                ),
            );
            skips.handle::<()>(Err(err))?;
            continue;
        }
        by_question.insert(ann.question_id.clone(), ann);
    }
    Ok(by_question)
}

fn make_job(
    index: usize,
    q: Question,
    answers: Option<&HashMap<Id, Annotation>>,
    subtype: &str,
    src: &VqaSource,
) -> std::result::Result<VqaJob, String> {
    let number = q
        .image_id
        .as_u64()
        .ok_or_else(|| format!("image_id {:?} is not a COCO image number", q.image_id.0))?;
    let (answers, mc, qtype, atype) = match answers {
        None => (Vec::new(), String::new(), String::new(), String::new()),
        Some(map) => {
            let ann = map.get(&q.question_id).ok_or_else(|| {
                format!(
                    "question_id {} has no entry in the annotations file",
                    q.question_id
                )
            })?;
            if ann.image_id != q.image_id {
                return Err(format!(
                    "image_id {} but its annotation says {}",
                    q.image_id, ann.image_id
                ));
            }
            (
                ann.answers.iter().map(|a| a.answer.clone()).collect(),
                ann.multiple_choice_answer.clone(),
                ann.question_type.clone(),
                ann.answer_type.clone(),
            )
        }
    };
    Ok(VqaJob {
        index,
        path: src.images.join(format!("COCO_{subtype}_{number:012}.jpg")),
        row: VqaRow {
            image: Vec::new(),
            question: q.question,
            answers,
            multiple_choice_answer: mc,
            question_id: q.question_id.0,
            question_type: qtype,
            answer_type: atype,
            image_id: q.image_id.0,
            lang: src.lang.clone(),
        },
    })
}
