//! Building Arrow columns for shapes rows and writing them as a Parquet shard.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, Float32Array, Int32Array, ListArray, RecordBatch, StringArray,
    StructArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use parquet::basic::Compression;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::scene::{random_scene, Scene};
use super::{draw, ShapesConfig};
use crate::error::{DataError, Result};
use crate::image_ops::encode_png;
use crate::shard_writer::{ShardFormat, ShardWriter};

/// One generated row before it becomes columns.
pub(super) struct Row {
    pub(super) id: String,
    pub(super) png: Vec<u8>,
    pub(super) scene: Scene,
}

fn object_fields() -> Fields {
    let text = |n: &str| Field::new(n, DataType::Utf8, false);
    let num = |n: &str| Field::new(n, DataType::Float32, false);
    Fields::from(vec![
        text("shape"),
        text("color"),
        text("size"),
        text("position"),
        num("x"),
        num("y"),
        num("w"),
        num("h"),
    ])
}

/// The Arrow schema of shapes shards.
pub fn shapes_schema() -> SchemaRef {
    let text = |n: &str| Field::new(n, DataType::Utf8, false);
    let objects = DataType::List(Arc::new(Field::new_list_field(
        DataType::Struct(object_fields()),
        false,
    )));
    Arc::new(Schema::new(vec![
        text("id"),
        Field::new("image", DataType::Binary, false),
        text("text"),
        text("lang"),
        Field::new("width", DataType::Int32, false),
        Field::new("height", DataType::Int32, false),
        text("primary_shape"),
        text("primary_color"),
        Field::new("objects", objects, false),
    ]))
}

/// Generates row `index` deterministically from the seed alone.
pub(super) fn make_row(index: usize, cfg: &ShapesConfig) -> Result<Row> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    // A separate ChaCha stream per row: independent of generation order and thread count.
    rng.set_stream(index as u64);
    let scene = random_scene(&mut rng, cfg.image_size, cfg.max_objects);
    let img = draw::render(&scene, cfg.image_size, &mut rng);
    Ok(Row {
        id: format!("shapes-{}-{index}", cfg.seed),
        png: encode_png(&img)?,
        scene,
    })
}

fn to_batch(rows: &[Row], size: u32) -> std::result::Result<RecordBatch, String> {
    let strings = |f: &dyn Fn(&Row) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let objs: Vec<_> = rows.iter().flat_map(|r| r.scene.objects.iter()).collect();
    let obj_strings = |f: &dyn Fn(&super::scene::SceneObject) -> &'static str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(objs.iter().map(|o| f(o))))
    };
    let obj_nums = |f: &dyn Fn(&super::scene::SceneObject) -> f32| -> ArrayRef {
        Arc::new(Float32Array::from_iter_values(objs.iter().map(|o| f(o))))
    };
    let structs = StructArray::try_new(
        object_fields(),
        vec![
            obj_strings(&|o| o.shape_name()),
            obj_strings(&|o| o.color_name()),
            obj_strings(&|o| o.size_name()),
            obj_strings(&|o| o.position_name()),
            obj_nums(&|o| o.x),
            obj_nums(&|o| o.y),
            obj_nums(&|o| o.w),
            obj_nums(&|o| o.h),
        ],
        None,
    )
    .map_err(|e| e.to_string())?;
    let offsets = OffsetBuffer::from_lengths(rows.iter().map(|r| r.scene.objects.len()));
    let objects = ListArray::try_new(
        Arc::new(Field::new_list_field(
            DataType::Struct(object_fields()),
            false,
        )),
        offsets,
        Arc::new(structs),
        None,
    )
    .map_err(|e| e.to_string())?;
    let side = i32::try_from(size).map_err(|e| e.to_string())?;
    let primary = |f: fn(&super::scene::SceneObject) -> &'static str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(
            rows.iter()
                .map(|r| r.scene.objects.first().map(f).unwrap_or_default()),
        ))
    };
    RecordBatch::try_new(
        shapes_schema(),
        vec![
            strings(&|r| r.id.as_str()),
            Arc::new(BinaryArray::from_iter_values(rows.iter().map(|r| &r.png))),
            strings(&|r| r.scene.caption.as_str()),
            strings(&|_| "en"),
            Arc::new(Int32Array::from_value(side, rows.len())),
            Arc::new(Int32Array::from_value(side, rows.len())),
            primary(|o| o.shape_name()),
            primary(|o| o.color_name()),
            Arc::new(objects),
        ],
    )
    .map_err(|e| e.to_string())
}

/// Writes rows `range` to `path` whole, one row group per `rows_per_group`.
pub(super) fn write_shard(path: &Path, range: Range<usize>, cfg: &ShapesConfig) -> Result<()> {
    // Snappy: synthetic PNGs do not shrink further, and generation should stay quick.
    let format = ShardFormat::new(cfg.rows_per_group).with_compression(Compression::SNAPPY);
    let mut writer = ShardWriter::create(path, shapes_schema(), &format)?;
    let indices: Vec<usize> = range.collect();
    for group in indices.chunks(cfg.rows_per_group) {
        let rows = group
            .par_iter()
            .map(|&i| make_row(i, cfg))
            .collect::<Result<Vec<_>>>()?;
        let batch = to_batch(&rows, cfg.image_size).map_err(|message| DataError::Write {
            file: path.to_path_buf(),
            message,
        })?;
        writer.write(&batch)?;
    }
    writer.finish()?;
    Ok(())
}
