//! Tests of shard writing (layout, schema, determinism, content).

use super::*;
use crate::column::TextColumn;
use crate::shards::{ShardIndex, ShardInfo};
use crate::spec::DataSpec;
use arrow::array::{Array, AsArray};
use arrow::datatypes::Float32Type;

fn cfg(rows: usize, seed: u64) -> ShapesConfig {
    ShapesConfig {
        rows,
        image_size: 16,
        rows_per_shard: 24,
        rows_per_group: 8,
        seed,
        ..ShapesConfig::default()
    }
}

#[test]
fn layout_names_and_row_groups() {
    let dir = tempfile::tempdir().unwrap();
    let summary = write_shapes(dir.path(), &cfg(40, 1)).unwrap();
    assert_eq!(summary.rows, 40);
    let names: Vec<_> = summary
        .shards
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "shapes-00000-of-00002.parquet",
            "shapes-00001-of-00002.parquet"
        ]
    );
    let spec = DataSpec::embedded("shapes").unwrap();
    let index = ShardIndex::build(&summary.shards, &spec).unwrap();
    assert_eq!(index.shards()[0].row_groups(), &[8, 8, 8]);
    assert_eq!(index.shards()[1].row_groups(), &[8, 8]);
    // Nothing but the shards is left in the folder.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn schema_satisfies_webli_and_shapes_specs() {
    let dir = tempfile::tempdir().unwrap();
    let summary = write_shapes(dir.path(), &cfg(8, 1)).unwrap();
    let info = ShardInfo::open(&summary.shards[0]).unwrap();
    for name in ["webli", "shapes"] {
        let spec = DataSpec::embedded(name).unwrap();
        spec.check_schema(info.schema(), info.path()).unwrap();
    }
    assert_eq!(info.schema().as_ref(), shapes_schema().as_ref());
}

#[test]
fn same_seed_same_bytes_other_seed_differs() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let sa = write_shapes(a.path(), &cfg(20, 5)).unwrap();
    let sb = write_shapes(b.path(), &cfg(20, 5)).unwrap();
    let sc = write_shapes(c.path(), &cfg(20, 6)).unwrap();
    let read = |p: &PathBuf| std::fs::read(p).unwrap();
    assert_eq!(read(&sa.shards[0]), read(&sb.shards[0]));
    assert_ne!(read(&sa.shards[0]), read(&sc.shards[0]));
}

#[test]
fn rows_are_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let summary = write_shapes(dir.path(), &cfg(24, 9)).unwrap();
    let info = ShardInfo::open(&summary.shards[0]).unwrap();
    let batch = info
        .read_row_group(
            1,
            &[
                "id",
                "image",
                "text",
                "primary_shape",
                "primary_color",
                "objects",
            ],
        )
        .unwrap();
    let col = |n: &str| TextColumn::new(batch.column_by_name(n).unwrap()).unwrap();
    let (ids, texts, shapes, colors) = (
        col("id"),
        col("text"),
        col("primary_shape"),
        col("primary_color"),
    );
    let objects = batch.column_by_name("objects").unwrap().as_list::<i32>();
    let images = batch.column_by_name("image").unwrap().as_binary::<i32>();
    for row in 0..batch.num_rows() {
        assert_eq!(ids.get(row).unwrap(), format!("shapes-9-{}", 8 + row));
        let text = texts.get(row).unwrap();
        let (shape, color) = (shapes.get(row).unwrap(), colors.get(row).unwrap());
        assert!(SHAPES.contains(&shape.as_str()) && COLORS.contains(&color.as_str()));
        assert!(text.contains(&format!("{color} {shape}")), "{text}");
        let img = crate::image_ops::decode_rgb(images.value(row)).unwrap();
        assert_eq!(img.dimensions(), (16, 16));

        let objs = objects.value(row);
        let objs = objs.as_struct();
        assert!((1..=2).contains(&objs.len()));
        let first_shape = TextColumn::new(objs.column_by_name("shape").unwrap()).unwrap();
        assert_eq!(first_shape.get(0).unwrap(), shape);
        let x = objs
            .column_by_name("x")
            .unwrap()
            .as_primitive::<Float32Type>();
        let w = objs
            .column_by_name("w")
            .unwrap()
            .as_primitive::<Float32Type>();
        for i in 0..objs.len() {
            assert!(x.value(i) >= 0.0 && x.value(i) + w.value(i) <= 16.0);
        }
    }
}

#[test]
fn shapes_and_colours_all_occur() {
    let dir = tempfile::tempdir().unwrap();
    let summary = write_shapes(dir.path(), &cfg(200, 2)).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for shard in &summary.shards {
        for col in ["primary_shape", "primary_color"] {
            seen.extend(crate::shards::read_text_column(shard, col).unwrap());
        }
    }
    assert_eq!(seen.len(), SHAPES.len() + COLORS.len(), "{seen:?}");
}

#[test]
fn invalid_config_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = ShapesConfig {
        max_objects: 0,
        ..cfg(8, 0)
    };
    let err = write_shapes(dir.path(), &bad).unwrap_err().to_string();
    assert!(err.contains("max_objects"), "{err}");
    let bad = ShapesConfig {
        rows: 0,
        ..cfg(8, 0)
    };
    assert!(write_shapes(dir.path(), &bad)
        .unwrap_err()
        .to_string()
        .contains("rows"));
}

#[test]
fn tokenizer_trained_on_shards_knows_every_word() {
    let dir = tempfile::tempdir().unwrap();
    let summary = write_shapes(dir.path(), &cfg(100, 4)).unwrap();
    let out = dir.path().join("tokenizer.json");
    let tok = crate::tokenizer::train_tokenizer_for(&summary.shards, 1000, &out).unwrap();
    assert!(out.is_file());
    let unk = 2;
    for shard in &summary.shards {
        for text in crate::shards::read_text_column(shard, "text").unwrap() {
            assert!(!tok.encode(&text).unwrap().contains(&unk), "{text}");
        }
    }
}
