//! Synthetic video clips: coloured shapes moving in straight lines over a still, noisy
//! background, written as `video`-spec shards (`data_specs/video.yaml`) for captioning
//! ("a red circle moving left") and question answering ("which way does the red circle
//! move?" → "left"). Clips vary in length, so loaders meet clips shorter than their frame cap.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryArray, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::columns::{self, list_of, utf8};
use super::scene::{article, Scene, SceneObject, COLORS, SHAPES};
use super::{draw, Task};
use crate::error::{DataError, Result};
use crate::image_ops::encode_png;
use crate::shard_writer::{ShardFormat, ShardWriter};

/// Directions a shape can move in, as captions and answers say them.
pub const DIRECTIONS: &[&str] = &["left", "right", "up", "down"];

/// Seconds between stored frames (the `stride` column), as if sampled at 2 fps.
const FRAME_STRIDE_S: f64 = 0.5;

/// Settings for [`write_video_tasks`].
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct VideoConfig {
    /// Clips to generate.
    #[arg(long = "rows", value_name = "ROWS")]
    pub clips: usize,
    /// Frames of the longest clip; each clip has between half of this (rounded up) and all.
    #[arg(long, default_value_t = 8)]
    pub frames: usize,
    /// Frame side in pixels.
    #[arg(long, default_value_t = 32)]
    pub image_size: u32,
    /// Most moving shapes in one clip (1..=4, each moving its own way).
    #[arg(long, default_value_t = 1)]
    pub max_objects: usize,
    /// Clips per Parquet file.
    #[arg(long, default_value_t = 1024)]
    pub rows_per_shard: usize,
    /// Clips per row group (VQA row groups hold every question of those clips).
    #[arg(long, default_value_t = 64)]
    pub rows_per_group: usize,
    /// Seed; the same seed gives the same shards.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl Default for VideoConfig {
    fn default() -> Self {
        VideoConfig {
            clips: 1024,
            frames: 8,
            image_size: 32,
            max_objects: 1,
            rows_per_shard: 1024,
            rows_per_group: 64,
            seed: 0,
        }
    }
}

impl VideoConfig {
    /// Checks every field is in range, naming the key.
    pub fn validate(&self) -> Result<()> {
        let fail = |key: &str, msg: String| Err(DataError::config(key, msg));
        if self.clips == 0 {
            return fail("clips", "must be at least 1".into());
        }
        if !(1..=64).contains(&self.frames) {
            return fail("frames", format!("{} is outside 1..=64", self.frames));
        }
        if !(16..=1024).contains(&self.image_size) {
            return fail(
                "image_size",
                format!("{} is outside 16..=1024", self.image_size),
            );
        }
        if !(1..=DIRECTIONS.len()).contains(&self.max_objects) {
            return fail(
                "max_objects",
                format!("{} is outside 1..={}", self.max_objects, DIRECTIONS.len()),
            );
        }
        if self.rows_per_shard == 0 || self.rows_per_group == 0 {
            return fail(
                "rows_per_shard",
                "rows per shard and per group must be at least 1".into(),
            );
        }
        Ok(())
    }
}

/// Shards written per task, and every text (to train a tokenizer on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoSummary {
    /// (task, shards, rows): [`Task::Caption`] and [`Task::Vqa`], both of the `video` spec.
    pub tasks: Vec<(Task, Vec<PathBuf>, usize)>,
    /// Every caption, question and answer written.
    pub texts: Vec<String>,
}

/// One shape's straight-line motion.
#[derive(Debug, Clone, PartialEq)]
struct Mover {
    shape: usize,
    color: usize,
    direction: usize,
    side: f32,
    /// Top-left corner in the first frame and in the last.
    from: (f32, f32),
    to: (f32, f32),
}

impl Mover {
    fn phrase(&self) -> String {
        let color = COLORS[self.color];
        format!(
            "{} {color} {} moving {}",
            article(color),
            SHAPES[self.shape],
            DIRECTIONS[self.direction]
        )
    }

    /// Its box in frame `f` of `len`.
    fn at(&self, f: usize, len: usize) -> SceneObject {
        let t = if len > 1 {
            f as f32 / (len - 1) as f32
        } else {
            0.0
        };
        SceneObject {
            shape: self.shape,
            color: self.color,
            large: false,
            cell: 4,
            x: (self.from.0 + t * (self.to.0 - self.from.0)).round(),
            y: (self.from.1 + t * (self.to.1 - self.from.1)).round(),
            w: self.side,
            h: self.side,
        }
    }
}

/// A generated clip: PNG frames and what moves in them.
struct Clip {
    id: String,
    frames: Vec<Vec<u8>>,
    movers: Vec<Mover>,
    caption: String,
}

/// One VQA row of a clip.
struct Question {
    question: String,
    answer: String,
    question_type: &'static str,
    answer_type: &'static str,
}

fn questions(clip: &Clip) -> Vec<Question> {
    let mut out = vec![Question {
        question: "how many shapes are moving?".into(),
        answer: clip.movers.len().to_string(),
        question_type: "how many",
        answer_type: "number",
    }];
    for m in &clip.movers {
        out.push(Question {
            question: format!(
                "which way does the {} {} move?",
                COLORS[m.color], SHAPES[m.shape]
            ),
            answer: DIRECTIONS[m.direction].into(),
            question_type: "which way",
            answer_type: "other",
        });
        // Directions are distinct within a clip, so this has one answer.
        out.push(Question {
            question: format!("what shape is moving {}?", DIRECTIONS[m.direction]),
            answer: SHAPES[m.shape].into(),
            question_type: "what shape",
            answer_type: "other",
        });
    }
    out
}

/// Generates clip `index` from the seed alone (independent of order and threads).
fn make_clip(index: usize, cfg: &VideoConfig) -> Result<Clip> {
    // A domain constant keeps clip streams apart from the still scenes of the same seed.
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x7669_6465_6f00);
    rng.set_stream(index as u64);
    let len = rng.random_range(cfg.frames.div_ceil(2)..=cfg.frames);
    let size = cfg.image_size as f32;
    let mut directions: Vec<usize> = (0..DIRECTIONS.len()).collect();
    directions.shuffle(&mut rng);
    let count = rng.random_range(1..=cfg.max_objects);
    let mut movers: Vec<Mover> = Vec::with_capacity(count);
    for &direction in &directions[..count] {
        let (shape, color) = loop {
            let pair = (
                rng.random_range(0..SHAPES.len()),
                rng.random_range(0..COLORS.len()),
            );
            if !movers.iter().any(|m| (m.shape, m.color) == pair) {
                break pair;
            }
        };
        let side = (size * if rng.random_bool(0.5) { 0.3 } else { 0.22 })
            .round()
            .max(3.0);
        let room = size - side;
        // Travel half to nine tenths of the free span, so the motion is plain in any 2 frames.
        let travel = room * rng.random_range(0.5..0.9);
        let start = rng.random_range(0.0..=(room - travel));
        let across = rng.random_range(0.0..=room);
        let (a, b) = (start, start + travel);
        let (from, to) = match DIRECTIONS[direction] {
            "right" => ((a, across), (b, across)),
            "left" => ((b, across), (a, across)),
            "down" => ((across, a), (across, b)),
            _ => ((across, b), (across, a)),
        };
        movers.push(Mover {
            shape,
            color,
            direction,
            side,
            from,
            to,
        });
    }
    // Every frame draws from the same generator state: one background, one noise pattern, one
    // colour per shape; only the shapes move.
    let background = rng.clone();
    let frames = (0..len)
        .map(|f| {
            let scene = Scene {
                objects: movers.iter().map(|m| m.at(f, len)).collect(),
                caption: String::new(),
            };
            encode_png(&draw::render(
                &scene,
                cfg.image_size,
                &mut background.clone(),
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let caption = movers
        .iter()
        .map(Mover::phrase)
        .collect::<Vec<_>>()
        .join(" and ");
    Ok(Clip {
        id: format!("video-{}-{index}", cfg.seed),
        frames,
        movers,
        caption,
    })
}

fn schema(task: Task) -> SchemaRef {
    let mut fields = vec![
        utf8("id"),
        utf8("video_id"),
        list_of("frames", DataType::Binary),
        Field::new("stride", DataType::Float64, false),
    ];
    match task {
        Task::Caption => fields.push(list_of("captions", DataType::Utf8)),
        _ => fields.extend([
            utf8("question"),
            list_of("answers", DataType::Utf8),
            utf8("question_type"),
            utf8("answer_type"),
        ]),
    }
    fields.push(utf8("lang"));
    Arc::new(Schema::new(fields))
}

/// A list column, its error as the video writer reports it.
fn list_array(item: DataType, values: ArrayRef, lengths: Vec<usize>) -> Result<ArrayRef> {
    columns::list_array(item, values, lengths).map_err(|e| DataError::config("video", e))
}

/// The rows of `task` for `clips`: one per clip (captions) or per question (VQA).
fn batch(task: Task, clips: &[Clip]) -> Result<RecordBatch> {
    // (clip, question) per row; captions have no question.
    let rows: Vec<(&Clip, Option<Question>)> = match task {
        Task::Caption => clips.iter().map(|c| (c, None)).collect(),
        _ => clips
            .iter()
            .flat_map(|c| questions(c).into_iter().map(move |q| (c, Some(q))))
            .collect(),
    };
    let strings = |f: &dyn Fn(usize) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values((0..rows.len()).map(f)))
    };
    let frames = list_array(
        DataType::Binary,
        Arc::new(BinaryArray::from_iter_values(
            rows.iter().flat_map(|(c, _)| c.frames.iter()),
        )),
        rows.iter().map(|(c, _)| c.frames.len()).collect(),
    )?;
    let id = |i: usize| match task {
        Task::Caption => rows[i].0.id.clone(),
        _ => {
            // Questions are numbered within their clip.
            let k = rows[..i]
                .iter()
                .rev()
                .take_while(|(c, _)| c.id == rows[i].0.id)
                .count();
            format!("{}-q{k}", rows[i].0.id)
        }
    };
    let mut columns: Vec<ArrayRef> = vec![
        strings(&id),
        strings(&|i| rows[i].0.id.clone()),
        frames,
        Arc::new(Float64Array::from_value(FRAME_STRIDE_S, rows.len())),
    ];
    let q = |i: usize| rows[i].1.as_ref();
    match task {
        Task::Caption => columns.push(list_array(
            DataType::Utf8,
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|(c, _)| c.caption.as_str()),
            )),
            vec![1; rows.len()],
        )?),
        _ => {
            columns.push(strings(&|i| {
                q(i).map(|q| q.question.clone()).unwrap_or_default()
            }));
            // Ten identical answers, as VQAv2 rows carry ten.
            columns.push(list_array(
                DataType::Utf8,
                Arc::new(StringArray::from_iter_values(rows.iter().flat_map(
                    |(_, q)| std::iter::repeat_n(q.as_ref().map_or("", |q| &q.answer), 10),
                ))),
                vec![10; rows.len()],
            )?);
            columns.push(strings(&|i| {
                q(i).map_or("", |q| q.question_type).to_string()
            }));
            columns.push(strings(&|i| q(i).map_or("", |q| q.answer_type).to_string()));
        }
    }
    columns.push(strings(&|_| "en".into()));
    RecordBatch::try_new(schema(task), columns)
        .map_err(|e| DataError::config("video", e.to_string()))
}

/// Writes `out_dir/caption/` and `out_dir/vqa/` shards (both of the `video` spec) for clips
/// `0..cfg.clips` of `cfg.seed`.
pub fn write_video_tasks(out_dir: &Path, cfg: &VideoConfig) -> Result<VideoSummary> {
    cfg.validate()?;
    const TASKS: [Task; 2] = [Task::Caption, Task::Vqa];
    let n_shards = cfg.clips.div_ceil(cfg.rows_per_shard);
    let mut shards = [Vec::new(), Vec::new()];
    let mut counts = [0usize; 2];
    let mut texts = Vec::new();
    for task in TASKS {
        let dir = out_dir.join(task.name());
        std::fs::create_dir_all(&dir).map_err(|e| DataError::io(&dir, e))?;
    }
    for s in 0..n_shards {
        let mut writers = TASKS
            .iter()
            .map(|t| {
                let name = format!("video-{}-{s:05}-of-{n_shards:05}.parquet", t.name());
                ShardWriter::create(
                    &out_dir.join(t.name()).join(name),
                    schema(*t),
                    &ShardFormat::new(usize::MAX),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let end = ((s + 1) * cfg.rows_per_shard).min(cfg.clips);
        let mut start = s * cfg.rows_per_shard;
        while start < end {
            let stop = (start + cfg.rows_per_group).min(end);
            let clips = (start..stop)
                .into_par_iter()
                .map(|i| make_clip(i, cfg))
                .collect::<Result<Vec<_>>>()?;
            for (k, task) in TASKS.iter().enumerate() {
                let b = batch(*task, &clips)?;
                counts[k] += b.num_rows();
                writers[k].write(&b)?;
            }
            for c in &clips {
                texts.push(c.caption.clone());
                texts.extend(
                    questions(c)
                        .into_iter()
                        .flat_map(|q| [q.question, q.answer]),
                );
            }
            start = stop;
        }
        for (k, w) in writers.into_iter().enumerate() {
            shards[k].push(w.finish()?);
        }
    }
    let [caption, vqa] = shards;
    Ok(VideoSummary {
        tasks: vec![
            (Task::Caption, caption, counts[0]),
            (Task::Vqa, vqa, counts[1]),
        ],
        texts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::column::{ListColumn, TextColumn};
    use crate::shards::{ShardIndex, ShardInfo};
    use crate::spec::DataSpec;

    fn cfg(clips: usize, seed: u64) -> VideoConfig {
        VideoConfig {
            clips,
            frames: 6,
            image_size: 24,
            max_objects: 2,
            rows_per_shard: 10,
            rows_per_group: 4,
            seed,
        }
    }

    #[test]
    fn shards_follow_the_video_spec_and_inspect_finds_no_bad_rows() {
        let dir = tempfile::tempdir().unwrap();
        let s = write_video_tasks(dir.path(), &cfg(12, 3)).unwrap();
        let spec = DataSpec::embedded("video").unwrap();
        let clips: Vec<Clip> = (0..12)
            .map(|i| make_clip(i, &cfg(12, 3)).unwrap())
            .collect();
        let questions: usize = clips.iter().map(|c| questions(c).len()).sum();
        assert_eq!(s.tasks[0].2, 12);
        assert_eq!(s.tasks[1].2, questions);
        for (task, shards, rows) in &s.tasks {
            assert_eq!(shards.len(), 2, "{}", task.name());
            assert_eq!(
                ShardIndex::build(shards, &spec).unwrap().total_rows(),
                *rows
            );
            let r = crate::inspect::inspect(shards, None, &Default::default(), 1, 5).unwrap();
            assert_eq!((r.spec.as_str(), r.bad_count), ("video", 0), "{r:?}");
            assert!(r.samples[0]["frames"].contains("frames, first 24×24"));
        }
        // Clip lengths vary between half the cap and the cap.
        let lens: std::collections::BTreeSet<usize> =
            clips.iter().map(|c| c.frames.len()).collect();
        assert!(lens.iter().all(|n| (3..=6).contains(n)), "{lens:?}");
        assert!(lens.len() > 1, "{lens:?}");
        // The stored caption is the clip's; the first question counts the movers.
        let info = ShardInfo::open(&s.tasks[1].1[0]).unwrap();
        let b = info
            .read_row_group(0, &["id", "question", "answers", "frames"])
            .unwrap();
        let q = TextColumn::new(b.column_by_name("question").unwrap()).unwrap();
        let ids = TextColumn::new(b.column_by_name("id").unwrap()).unwrap();
        assert_eq!(q.get(0).unwrap(), "how many shapes are moving?");
        assert_eq!(ids.get(1).unwrap(), "video-3-0-q1");
        let answers = ListColumn::new(b.column_by_name("answers").unwrap()).unwrap();
        assert_eq!(
            answers.strings(0).unwrap(),
            vec![clips[0].movers.len().to_string(); 10]
        );
        let frames = ListColumn::new(b.column_by_name("frames").unwrap()).unwrap();
        assert_eq!(
            frames.byte_items(0).unwrap().len(),
            clips[0].frames.len(),
            "every frame of the clip is stored"
        );
    }

    #[test]
    fn shapes_move_the_way_the_caption_says() {
        for i in 0..40 {
            let c = make_clip(i, &cfg(40, 1)).unwrap();
            assert!(!c.caption.is_empty());
            for m in &c.movers {
                assert!(c.caption.contains(&m.phrase()), "{}", c.caption);
                // The shape's colour lies where its box is in the first and last frame.
                let first = crate::image_ops::decode_rgb(&c.frames[0]).unwrap();
                let last = crate::image_ops::decode_rgb(c.frames.last().unwrap()).unwrap();
                let (a, b) = (
                    m.at(0, c.frames.len()),
                    m.at(c.frames.len() - 1, c.frames.len()),
                );
                let dx = b.x - a.x;
                let dy = b.y - a.y;
                match DIRECTIONS[m.direction] {
                    "left" => assert!(dx < 0.0 && dy == 0.0),
                    "right" => assert!(dx > 0.0 && dy == 0.0),
                    "up" => assert!(dy < 0.0 && dx == 0.0),
                    _ => assert!(dy > 0.0 && dx == 0.0),
                }
                for (img, o) in [(&first, &a), (&last, &b)] {
                    assert!(
                        o.x >= 0.0 && o.x + o.w <= 24.0 && o.y + o.h <= 24.0,
                        "{o:?}"
                    );
                    // The centre of every shape is filled (the cross's arms meet there).
                    let px = img.get_pixel((o.x + o.w / 2.0) as u32, (o.y + o.h / 2.0) as u32);
                    assert!(px.0.iter().any(|&v| v > 120), "clip {i}: {px:?} at {o:?}");
                }
            }
        }
    }

    #[test]
    fn same_seed_same_bytes_and_bad_settings_name_the_key() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let sa = write_video_tasks(a.path(), &cfg(5, 2)).unwrap();
        let sb = write_video_tasks(b.path(), &cfg(5, 2)).unwrap();
        assert_eq!(
            std::fs::read(&sa.tasks[0].1[0]).unwrap(),
            std::fs::read(&sb.tasks[0].1[0]).unwrap()
        );
        assert_eq!(sa.texts, sb.texts);
        let bad = VideoConfig {
            max_objects: 5,
            ..cfg(5, 2)
        };
        let e = write_video_tasks(a.path(), &bad).unwrap_err().to_string();
        assert!(e.contains("max_objects"), "{e}");
    }
}
