//! Loader tests of video rows: frame choice and padding, shared augmentation, bad frames,
//! exact resume, and mixing with image datasets.

use super::*;
use crate::synth::{write_video_tasks, VideoConfig};
use arrow::array::{ArrayRef, BinaryArray, ListArray, RecordBatch, StringArray};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Schema};
use std::path::Path;

/// A PNG whose every pixel is `shade` (so a frame's plane tells which frame it was).
fn flat(shade: u8) -> Vec<u8> {
    crate::image_ops::encode_png(&image::RgbImage::from_pixel(4, 4, image::Rgb([shade; 3])))
        .unwrap()
}

/// Writes a video-spec shard of captioned clips, one row group.
fn write_clips(path: &Path, clips: &[Vec<Vec<u8>>]) {
    let list = |item: DataType| Arc::new(Field::new_list_field(item, false));
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("video_id", DataType::Utf8, false),
        Field::new("frames", DataType::List(list(DataType::Binary)), false),
        Field::new("captions", DataType::List(list(DataType::Utf8)), false),
    ]));
    let n = clips.len();
    let frames = ListArray::try_new(
        list(DataType::Binary),
        OffsetBuffer::from_lengths(clips.iter().map(Vec::len)),
        Arc::new(BinaryArray::from_iter_values(clips.iter().flatten())),
        None,
    )
    .unwrap();
    let captions = ListArray::try_new(
        list(DataType::Utf8),
        OffsetBuffer::from_lengths(vec![1; n]),
        Arc::new(StringArray::from_iter_values(
            (0..n).map(|i| format!("clip {i}")),
        )),
        None,
    )
    .unwrap();
    let ids: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(&ids)),
        Arc::new(StringArray::from_iter_values(&ids)),
        Arc::new(frames),
        Arc::new(captions),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let mut w = crate::shard_writer::ShardWriter::create(
        path,
        schema,
        &crate::shard_writer::ShardFormat::new(100),
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.finish().unwrap();
}

fn caption() -> RowFormat {
    RowFormat::Caption {
        prompt: crate::prompts::CAPTION.into(),
    }
}

fn video_config(shards: Vec<PathBuf>, tok: Arc<TextTokenizer>, batch: usize) -> LoaderConfig {
    LoaderConfig {
        shards,
        spec: DataSpec::embedded("video").unwrap(),
        tokenizer: tok,
        image_size: 2,
        text_len: 6,
        batch_size: batch,
        seed: 5,
        shuffle: false,
        label_columns: vec![],
        threads: 2,
    }
}

fn words() -> Arc<TextTokenizer> {
    let texts: Vec<String> = (0..8).map(|i| format!("caption en clip {i}")).collect();
    Arc::new(TextTokenizer::train(&texts, 40).unwrap())
}

/// Each plane's first value mapped back to the 0..=255 shade it came from.
fn shades(b: &Batch, sample: usize) -> Vec<u8> {
    let plane = 3 * b.image_size * b.image_size;
    (0..b.frames)
        .map(|k| {
            let v = b.pixels[(sample * b.frames + k) * plane];
            ((v + 1.0) * 127.5).round() as u8
        })
        .collect()
}

#[test]
fn clips_give_a_fixed_stride_of_frames_and_short_ones_repeat_their_last() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clips.parquet");
    let clip = |n: u8| (0..n).map(|k| flat(10 * k)).collect::<Vec<_>>();
    write_clips(&path, &[clip(10), clip(2), clip(4), clip(13)]);
    let loader = Loader::new_task(video_config(vec![path], words(), 4), caption(), 4, 0, 1)
        .unwrap()
        .with_max_frames(4)
        .unwrap();
    assert_eq!(loader.frames(), 4);
    let b = loader.epoch_batches().next().unwrap().unwrap();
    assert_eq!((b.size, b.frames, b.skipped), (4, 4, 0));
    assert_eq!(b.pixels.len(), 4 * 4 * 3 * 2 * 2);
    // 10 frames into 4: stride 3 (frames 0, 3, 6, 9); 13 into 4: stride 4 (0, 4, 8, 12).
    assert_eq!(shades(&b, 0), [0, 30, 60, 90]);
    assert_eq!(shades(&b, 3), [0, 40, 80, 120]);
    // Shorter clips: every frame, then the last one again.
    assert_eq!(shades(&b, 1), [0, 10, 10, 10]);
    assert_eq!(shades(&b, 2), [0, 10, 20, 30]);
    // Captioning reads `captions`; evaluation sees every reference.
    assert_eq!(b.targets[0], "clip 0");
    assert_eq!(b.references[2], vec!["clip 2".to_string()]);
    assert!(b.target_boxes.iter().all(Option::is_none));
    // The default cap is 16 frames; one frame takes the middle of the clip.
    let path = dir.path().join("clips.parquet");
    let one = Loader::new_task(
        video_config(vec![path.clone()], words(), 4),
        caption(),
        4,
        0,
        1,
    )
    .unwrap();
    assert_eq!(one.frames(), DEFAULT_MAX_FRAMES);
    let one = one.with_max_frames(1).unwrap();
    let b = one.epoch_batches().next().unwrap().unwrap();
    assert_eq!((b.frames, b.pixels.len()), (1, 4 * 3 * 2 * 2));
    assert_eq!(shades(&b, 0), [40]);
    assert!(
        Loader::new_task(video_config(vec![path], words(), 4), caption(), 4, 0, 1)
            .unwrap()
            .with_max_frames(0)
            .is_err()
    );
}

#[test]
fn a_corrupt_chosen_frame_skips_the_clip_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.parquet");
    let mut broken = flat(0);
    broken.truncate(20);
    let clip = |bad: Option<usize>| {
        (0..8u8)
            .map(|k| match bad {
                Some(b) if b == k as usize => broken.clone(),
                _ => flat(k),
            })
            .collect::<Vec<_>>()
    };
    // Of 8 frames into 4 (stride 2: frames 0, 2, 4, 6), frame 2 is read and frame 3 is not.
    write_clips(
        &path,
        &[clip(None), clip(Some(2)), clip(Some(3)), clip(None)],
    );
    let loader = Loader::new_task(video_config(vec![path], words(), 4), caption(), 4, 0, 1)
        .unwrap()
        .with_max_frames(4)
        .unwrap();
    let batches: Vec<Batch> = loader.epoch_batches().collect::<Result<_>>().unwrap();
    let ids: Vec<&str> = batches
        .iter()
        .flat_map(|b| b.ids.iter().map(String::as_str))
        .collect();
    assert_eq!(ids, ["c0", "c2", "c3"]);
    assert_eq!(batches.iter().map(|b| b.skipped).sum::<usize>(), 1);
    // Training batches stay full.
    let mut cfg_loader = Loader::new_task(
        video_config(vec![dir.path().join("bad.parquet")], words(), 3),
        caption(),
        4,
        0,
        1,
    )
    .unwrap()
    .with_max_frames(4)
    .unwrap();
    let b = cfg_loader.next_batch().unwrap();
    assert_eq!((b.size, b.skipped), (3, 1));
}

#[test]
fn augmentation_crops_every_frame_of_a_clip_alike() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("same.parquet");
    let gradient = crate::image_ops::encode_png(&image::RgbImage::from_fn(40, 30, |x, y| {
        image::Rgb([(x * 6) as u8, (y * 8) as u8, 100])
    }))
    .unwrap();
    write_clips(&path, &vec![vec![gradient; 3]; 6]);
    let mut cfg = video_config(vec![path], words(), 6);
    cfg.image_size = 8;
    cfg.shuffle = true;
    let augment = crate::augment::Augment {
        crop_scale: Some([0.1, 0.4]),
        flip: true,
        ..Default::default()
    };
    let mut loader = Loader::new_task(cfg, caption(), 4, 0, 1)
        .unwrap()
        .with_max_frames(3)
        .unwrap()
        .with_augment(augment)
        .unwrap();
    let b = loader.next_batch().unwrap();
    let plane = 3 * 8 * 8;
    let clip = |i: usize| &b.pixels[i * 3 * plane..(i + 1) * 3 * plane];
    for i in 0..6 {
        let c = clip(i);
        assert_eq!(
            &c[..plane],
            &c[plane..2 * plane],
            "clip {i}: frames 0 and 1"
        );
        assert_eq!(&c[..plane], &c[2 * plane..], "clip {i}: frames 0 and 2");
    }
    // The rows still differ from each other: the draw is per row.
    assert!((1..6).any(|i| clip(i) != clip(0)));
}

#[test]
fn video_resume_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = VideoConfig {
        clips: 24,
        frames: 6,
        image_size: 16,
        max_objects: 2,
        rows_per_shard: 12,
        rows_per_group: 4,
        seed: 7,
    };
    let s = write_video_tasks(dir.path(), &cfg).unwrap();
    let tok = Arc::new(TextTokenizer::train(&s.texts, 100).unwrap());
    let make = || {
        let mut c = video_config(s.tasks[1].1.clone(), tok.clone(), 5);
        c.image_size = 8;
        c.shuffle = true;
        Loader::new_task(
            c,
            RowFormat::Vqa {
                prompt: crate::prompts::ANSWER.into(),
            },
            4,
            0,
            1,
        )
        .unwrap()
        .with_max_frames(4)
        .unwrap()
        .with_augment(crate::augment::Augment {
            crop_scale: Some([0.5, 1.0]),
            flip: true,
            ..Default::default()
        })
        .unwrap()
    };
    let mut a = make();
    for _ in 0..7 {
        a.next_batch().unwrap();
    }
    let saved = serde_json::to_string(&a.cursor()).unwrap();
    let want: Vec<Batch> = (0..6).map(|_| a.next_batch().unwrap()).collect();
    assert!(want
        .iter()
        .all(|b| b.frames == 4 && b.pixels.len() == 5 * 4 * 3 * 64));
    let mut b = make();
    b.seek(&serde_json::from_str(&saved).unwrap()).unwrap();
    let got: Vec<Batch> = (0..6).map(|_| b.next_batch().unwrap()).collect();
    assert_eq!(got, want);
    // Questions become VQA prompts with the majority answer as the target.
    let q = &want[0];
    assert!(
        q.texts.iter().all(|t| t.starts_with("answer en ")),
        "{:?}",
        q.texts
    );
    for (t, refs) in q.targets.iter().zip(&q.references) {
        assert_eq!(refs.len(), 10);
        assert!(refs.contains(t));
    }
}

#[test]
fn mixtures_and_batches_refuse_mixed_frame_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clips.parquet");
    write_clips(&path, &[vec![flat(1); 3], vec![flat(2); 3]]);
    let tok = words();
    let entry = |name: &str, frames: usize| crate::mixture::MixtureEntry {
        name: name.into(),
        loader: Loader::new_task(
            video_config(vec![path.clone()], tok.clone(), 2),
            caption(),
            4,
            0,
            1,
        )
        .unwrap()
        .with_max_frames(frames)
        .unwrap(),
        weight: 1.0,
    };
    let e = crate::mixture::Mixture::new(vec![entry("short", 2), entry("long", 3)], 0)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("\"long\"") && e.contains("3 frame"), "{e}");
    let mut m = crate::mixture::Mixture::new(vec![entry("a", 3), entry("b", 3)], 0).unwrap();
    assert_eq!(m.next_batch(4).unwrap().frames, 3);
    // Appending batches of different frame counts is refused, naming both shapes.
    let (mut x, mut y) = (entry("x", 2).loader, entry("y", 3).loader);
    let mut bx = x.next_batch().unwrap();
    let e = bx.append(y.next_batch().unwrap()).unwrap_err().to_string();
    assert!(
        e.contains("(2, 2, 6, 4)") && e.contains("(2, 3, 6, 4)"),
        "{e}"
    );
    // Image specs have no frames to set.
    let img = dir.path().join("img");
    let shapes = crate::synth::write_shapes(
        &img,
        &crate::ShapesConfig {
            rows: 4,
            image_size: 8,
            ..Default::default()
        },
    )
    .unwrap();
    let mut c = video_config(shapes.shards, tok, 2);
    c.spec = DataSpec::embedded("webli").unwrap();
    let e = Loader::new(c, 0, 1)
        .unwrap()
        .with_max_frames(4)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("frames") && e.contains("images"), "{e}");
}
