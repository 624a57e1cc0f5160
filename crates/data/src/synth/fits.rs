//! Which captions fit which synthetic scene, read back from the shards' scene annotations
//! (`objects`): the captions repeat ("a red circle" fits every scene with a red circle), so a
//! retrieval model can at best tie an image's own caption with the others that fit it.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use arrow::array::{Array, AsArray};

use super::scene::{fitting_captions, SceneObject, COLORS, POSITIONS, SHAPES, SIZES};
use crate::column::TextColumn;
use crate::error::{DataError, Result};
use crate::shards::ShardInfo;

/// Row id → every caption that fits its scene, for shards with an `objects` column (shapes
/// data); `None` when any shard has none.
pub fn scene_fits(shards: &[PathBuf]) -> Result<Option<HashMap<String, HashSet<String>>>> {
    let mut out = HashMap::new();
    for path in shards {
        let info = ShardInfo::open(path)?;
        if !(info.has_column("objects") && info.has_column("id")) {
            return Ok(None);
        }
        let bad = |message: String| DataError::Schema {
            file: path.clone(),
            column: "objects".into(),
            message,
        };
        for rg in 0..info.row_groups().len() {
            let batch = info.read_row_group(rg, &["id", "objects"])?;
            let ids = batch
                .column_by_name("id")
                .and_then(TextColumn::new)
                .ok_or_else(|| bad("the id column is not text".into()))?;
            let objects = batch
                .column_by_name("objects")
                .and_then(|c| c.as_list_opt::<i32>())
                .ok_or_else(|| bad("is not a list of structs".into()))?;
            for row in 0..batch.num_rows() {
                let Some(id) = ids.get(row) else { continue };
                let scene = scene_objects(objects.value(row).as_ref())
                    .map_err(|e| bad(format!("row {row}: {e}")))?;
                out.insert(id, fitting_captions(&scene).into_iter().collect());
            }
        }
    }
    Ok(Some(out))
}

/// A row's objects from their annotation structs (shape, colour, size, position names).
fn scene_objects(objs: &dyn Array) -> std::result::Result<Vec<SceneObject>, String> {
    let objs = objs.as_struct_opt().ok_or("items are not structs")?;
    let names = |field: &str| -> std::result::Result<TextColumn, String> {
        objs.column_by_name(field)
            .and_then(TextColumn::new)
            .ok_or_else(|| format!("no text field {field:?}"))
    };
    let (shape, color, size, position) = (
        names("shape")?,
        names("color")?,
        names("size")?,
        names("position")?,
    );
    let index = |col: &TextColumn, i: usize, classes: &[&str], field: &str| {
        let v = col.get(i).unwrap_or_default();
        classes
            .iter()
            .position(|c| *c == v)
            .ok_or_else(|| format!("{field} {v:?} is not one of {classes:?}"))
    };
    (0..objs.len())
        .map(|i| {
            Ok(SceneObject {
                shape: index(&shape, i, SHAPES, "shape")?,
                color: index(&color, i, COLORS, "color")?,
                large: index(&size, i, SIZES, "size")? == 1,
                cell: index(&position, i, POSITIONS, "position")?,
                x: 0.0,
                y: 0.0,
                w: 0.0,
                h: 0.0,
            })
        })
        .collect()
}
