//! Loader tests: exact resume, rank partitioning, skipping bad rows, fatal errors.

use super::*;
use crate::synth::{write_shapes, ShapesConfig};
use arrow::array::{ArrayRef, BinaryArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use std::collections::BTreeSet;
use std::path::Path;

/// 40 rows of 16-px scenes in 5 row groups of 8 over 2 shards, and a tokenizer for them.
pub(super) fn dataset(dir: &Path) -> (Vec<PathBuf>, Arc<TextTokenizer>) {
    let cfg = ShapesConfig {
        rows: 40,
        image_size: 16,
        rows_per_shard: 24,
        rows_per_group: 8,
        seed: 1,
        ..ShapesConfig::default()
    };
    let shards = write_shapes(dir, &cfg).unwrap().shards;
    let tok = crate::tokenizer::train_tokenizer_for(&shards, 200, &dir.join("tokenizer.json"));
    (shards, Arc::new(tok.unwrap()))
}

pub(super) fn config(
    shards: Vec<PathBuf>,
    tok: Arc<TextTokenizer>,
    batch_size: usize,
) -> LoaderConfig {
    LoaderConfig {
        shards,
        spec: DataSpec::embedded("webli").unwrap(),
        tokenizer: tok,
        image_size: 8,
        text_len: 12,
        batch_size,
        seed: 42,
        shuffle: true,
        label_columns: vec![
            "primary_shape".into(),
            "primary_color".into(),
            "primary_shape".into(),
        ],
        threads: 2,
    }
}

fn ids(loader: &mut Loader, batches: usize) -> Vec<String> {
    (0..batches)
        .flat_map(|_| loader.next_batch().unwrap().ids)
        .collect()
}

#[test]
fn batch_shapes_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let (shards, tok) = dataset(dir.path());
    let mut loader = Loader::new(config(shards, tok.clone(), 5), 0, 1).unwrap();
    let b = loader.next_batch().unwrap();
    assert_eq!((b.size, b.image_size, b.text_len, b.skipped), (5, 8, 12, 0));
    assert_eq!(b.pixels.len(), 5 * 3 * 8 * 8);
    assert!(b.pixels.iter().all(|v| (-1.0..=1.0).contains(v)));
    assert_eq!(b.input_ids.len(), 5 * 12);
    assert_eq!((b.ids.len(), b.texts.len()), (5, 5));
    for (i, text) in b.texts.iter().enumerate() {
        assert_eq!(
            &b.input_ids[i * 12..(i + 1) * 12],
            tok.encode_fixed(text, 12).unwrap()
        );
    }
    assert_eq!(
        b.labels.keys().collect::<Vec<_>>(),
        ["primary_color", "primary_shape"]
    );
    let shapes = &b.labels["primary_shape"];
    assert_eq!(shapes.len(), 5);
    for (shape, text) in shapes.iter().zip(&b.texts) {
        assert!(text.contains(shape.as_str()), "{shape} not in {text}");
    }
}

#[test]
fn one_epoch_sees_every_row_once_and_epochs_differ() {
    let dir = tempfile::tempdir().unwrap();
    let (shards, tok) = dataset(dir.path());
    let mut loader = Loader::new(config(shards, tok, 8), 0, 1).unwrap();
    assert_eq!(loader.epoch_rows(0), 40);
    let e0 = ids(&mut loader, 5);
    assert_eq!(
        loader.cursor(),
        Cursor {
            epoch: 1,
            unit: 0,
            row: 0,
            ..Cursor::default()
        }
    );
    let e1 = ids(&mut loader, 5);
    assert_eq!(e0.iter().collect::<BTreeSet<_>>().len(), 40);
    assert_eq!(
        e0.iter().collect::<BTreeSet<_>>(),
        e1.iter().collect::<BTreeSet<_>>()
    );
    assert_ne!(e0, e1, "epochs should be shuffled differently");
}

/// Runs `before` batches, saves the cursor, and checks a fresh loader resumed from it
/// produces the same next `after` batches as the original.
fn check_resume(batch_size: usize, before: usize, after: usize) -> Cursor {
    let dir = tempfile::tempdir().unwrap();
    let (shards, tok) = dataset(dir.path());
    let cfg = config(shards, tok, batch_size);
    let mut a = Loader::new(cfg.clone(), 0, 1).unwrap();
    ids(&mut a, before);
    let saved = serde_json::to_string(&a.cursor()).unwrap();
    let continued: Vec<Batch> = (0..after).map(|_| a.next_batch().unwrap()).collect();

    let mut b = Loader::new(cfg, 0, 1).unwrap();
    let cursor: Cursor = serde_json::from_str(&saved).unwrap();
    b.seek(&cursor).unwrap();
    let resumed: Vec<Batch> = (0..after).map(|_| b.next_batch().unwrap()).collect();
    assert_eq!(continued, resumed);
    cursor
}

#[test]
fn resume_mid_epoch_is_exact() {
    let c = check_resume(6, 2, 4);
    assert_eq!(c.epoch, 0);
    assert!(c.row > 0, "{c:?} should be inside a unit");
}

#[test]
fn resume_across_epoch_boundary_is_exact() {
    // 6 batches of 6 = 36 rows: the 7th batch spans epochs 0 and 1.
    let c = check_resume(6, 6, 3);
    assert_eq!((c.epoch, c.unit, c.row), (0, 4, 4));
    // 5 batches of 8 end exactly on the boundary.
    let c = check_resume(8, 5, 2);
    assert_eq!(
        c,
        Cursor {
            epoch: 1,
            unit: 0,
            row: 0,
            ..Cursor::default()
        }
    );
}

#[test]
fn seek_rejects_out_of_range_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let (shards, tok) = dataset(dir.path());
    let mut loader = Loader::new(config(shards, tok, 4), 0, 1).unwrap();
    let err = loader
        .seek(&Cursor {
            epoch: 0,
            unit: 5,
            row: 0,
            ..Cursor::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("cursor"), "{err}");
    let err = loader
        .seek(&Cursor {
            epoch: 2,
            unit: 0,
            row: 8,
            ..Cursor::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("8 rows"), "{err}");
}

#[test]
fn two_ranks_partition_each_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let (shards, tok) = dataset(dir.path());
    for epoch in 0..2u64 {
        let mut all = Vec::new();
        for rank in 0..2 {
            let mut loader = Loader::new(config(shards.clone(), tok.clone(), 1), rank, 2).unwrap();
            loader
                .seek(&Cursor {
                    epoch,
                    unit: 0,
                    row: 0,
                    ..Cursor::default()
                })
                .unwrap();
            let mut n = 0;
            while loader.cursor().epoch == epoch {
                all.extend(loader.next_batch().unwrap().ids);
                n += 1;
            }
            assert_eq!(n, loader.epoch_rows(epoch));
            assert!(n == 16 || n == 24, "rank {rank} got {n} rows");
        }
        assert_eq!(all.len(), 40);
        assert_eq!(
            all.iter().collect::<BTreeSet<_>>().len(),
            40,
            "epoch {epoch}"
        );
    }
}

#[test]
fn evaluation_pass_is_ordered_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    let (shards, tok) = dataset(dir.path());
    let loader = Loader::new(config(shards.clone(), tok.clone(), 16), 0, 1).unwrap();
    let batches: Vec<Batch> = loader.epoch_batches().collect::<Result<_>>().unwrap();
    let sizes: Vec<usize> = batches.iter().map(|b| b.size).collect();
    assert_eq!(sizes, [16, 16, 8]);
    let ids: Vec<String> = batches.into_iter().flat_map(|b| b.ids).collect();
    let want: Vec<String> = (0..40).map(|i| format!("shapes-1-{i}")).collect();
    assert_eq!(ids, want);

    let mut split = Vec::new();
    for rank in 0..2 {
        for b in one_pass(config(shards.clone(), tok.clone(), 16), rank, 2).unwrap() {
            split.extend(b.ids);
        }
    }
    split.sort();
    let mut want = want;
    want.sort();
    assert_eq!(split, want);
}

#[test]
fn too_many_ranks_is_an_empty_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let (shards, tok) = dataset(dir.path());
    let err = Loader::new(config(shards, tok, 4), 5, 6)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("empty dataset") && err.contains("shapes-00000-of-00002"),
        "{err}"
    );
}

#[test]
fn invalid_config_names_key() {
    let dir = tempfile::tempdir().unwrap();
    let (shards, tok) = dataset(dir.path());
    let err = Loader::new(config(shards.clone(), tok.clone(), 0), 0, 1)
        .err()
        .unwrap();
    assert!(err.to_string().contains("batch_size"), "{err}");
    let err = Loader::new(config(shards, tok, 4), 2, 2).err().unwrap();
    assert!(err.to_string().contains("rank"), "{err}");
}

#[test]
fn missing_label_column_names_file_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let (shards, tok) = dataset(dir.path());
    let mut cfg = config(shards, tok, 4);
    cfg.label_columns = vec!["species".into()];
    let err = Loader::new(cfg, 0, 1).err().unwrap().to_string();
    assert!(
        err.contains("shapes-00000-of-00002.parquet") && err.contains("species"),
        "{err}"
    );
}

#[test]
fn non_parquet_shard_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (mut shards, tok) = dataset(dir.path());
    let bogus = dir.path().join("bogus.parquet");
    std::fs::write(&bogus, "PAR1 but not really").unwrap();
    shards.push(bogus);
    let err = Loader::new(config(shards, tok, 4), 0, 1)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("bogus.parquet"), "{err}");
}

/// Writes a webli-style shard without an `id` column; `None` entries become nulls.
fn write_custom(path: &Path, images: Vec<Option<Vec<u8>>>, texts: Vec<Option<&str>>) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("image", DataType::Binary, true),
        Field::new("text", DataType::Utf8, true),
        Field::new("lang", DataType::Utf8, true),
    ]));
    let n = images.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(BinaryArray::from_iter(images)),
        Arc::new(StringArray::from(texts)),
        Arc::new(StringArray::from(vec!["en"; n])),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let format = crate::shard_writer::ShardFormat::new(n);
    let mut w = crate::shard_writer::ShardWriter::create(path, schema, &format).unwrap();
    w.write(&batch).unwrap();
    w.finish().unwrap();
}

fn png(shade: u8) -> Vec<u8> {
    crate::image_ops::encode_png(&image::RgbImage::from_pixel(4, 4, image::Rgb([shade; 3])))
        .unwrap()
}

#[test]
fn corrupt_image_and_null_text_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.parquet");
    let mut images: Vec<Option<Vec<u8>>> = (0..10).map(|i| Some(png(i * 20))).collect();
    let mut corrupt = png(0);
    corrupt.truncate(20); // a PNG signature and a cut-off header
    images[3] = Some(corrupt);
    images[5] = None;
    let mut texts: Vec<Option<&str>> = vec![Some("a red circle"); 10];
    texts[6] = None;
    write_custom(&path, images, texts);
    let tok = Arc::new(TextTokenizer::train(&["a red circle".to_string()], 10).unwrap());
    let mut cfg = config(vec![path], tok, 4);
    cfg.label_columns.clear();
    cfg.shuffle = false;

    let loader = Loader::new(cfg.clone(), 0, 1).unwrap();
    let batches: Vec<Batch> = loader.epoch_batches().collect::<Result<_>>().unwrap();
    assert_eq!(batches.iter().map(|b| b.size).collect::<Vec<_>>(), [4, 3]);
    assert_eq!(batches.iter().map(|b| b.skipped).sum::<usize>(), 3);
    let ids: Vec<String> = batches.into_iter().flat_map(|b| b.ids).collect();
    let rows: Vec<String> = [0, 1, 2, 4, 7, 8, 9]
        .iter()
        .map(|r| format!("mixed.parquet#0:{r}"))
        .collect();
    assert_eq!(ids, rows);

    // Training batches stay full: skipped rows are replaced by later ones.
    let mut loader = Loader::new(cfg, 0, 1).unwrap();
    let b = loader.next_batch().unwrap();
    assert_eq!((b.size, b.skipped), (4, 1));
    assert_eq!(b.ids.last().unwrap(), "mixed.parquet#0:4");
}

#[test]
fn all_rows_bad_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.parquet");
    write_custom(&path, vec![Some(b"junk".to_vec()); 3], vec![Some("x"); 3]);
    let tok = Arc::new(TextTokenizer::train(&["x".to_string()], 10).unwrap());
    let mut cfg = config(vec![path], tok, 2);
    cfg.label_columns.clear();
    let mut loader = Loader::new(cfg, 0, 1).unwrap();
    let err = loader.next_batch().unwrap_err().to_string();
    assert!(
        err.contains("bad.parquet") && err.contains("skipped"),
        "{err}"
    );
    assert_eq!(loader.cursor(), Cursor::default());
}

#[test]
fn loader_can_move_to_a_prefetch_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<Loader>();
    assert_send::<Batch>();
    let dir = tempfile::tempdir().unwrap();
    let (shards, tok) = dataset(dir.path());
    let mut loader = Loader::new(config(shards, tok, 3), 0, 1).unwrap();
    let handle = std::thread::spawn(move || loader.next_batch().map(|b| b.size));
    assert_eq!(handle.join().unwrap().unwrap(), 3);
}

#[test]
fn resuming_at_another_world_size_reads_every_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let (shards, tok) = dataset(dir.path());
    let total = Loader::new(config(shards.clone(), tok.clone(), 1), 0, 1)
        .unwrap()
        .epoch_rows(0);
    // Two ranks read 4 batches of 3 (shuffled), then the job resumes on 3 ranks, or on 1.
    let mut seen = Vec::new();
    let mut cursors = Vec::new();
    for r in 0..2 {
        let mut l = Loader::new(config(shards.clone(), tok.clone(), 3), r, 2).unwrap();
        seen.extend(ids(&mut l, 4));
        cursors.push(l.cursor());
    }
    for new_world in [3, 1] {
        let mut epoch0 = seen.clone();
        for r in 0..new_world {
            let mut l = Loader::new(config(shards.clone(), tok.clone(), 3), r, new_world).unwrap();
            l.seek_resharded(&cursors).unwrap();
            // The resharded position survives a checkpoint round trip.
            let saved = l.cursor();
            l.seek(&saved).unwrap();
            while l.cursor().epoch == 0 {
                epoch0.extend(l.next_batch_of(1).unwrap().ids);
            }
            assert!(l.cursor().plan.is_none(), "epoch 1 follows the normal plan");
        }
        let n = epoch0.len();
        epoch0.sort();
        epoch0.dedup();
        assert_eq!(
            (n, epoch0.len()),
            (total, total),
            "world 2 → {new_world}: rows repeated or skipped"
        );
    }
}
