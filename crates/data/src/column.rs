//! Typed read access to Arrow columns that may come in several physical encodings.

use arrow::array::{
    Array, ArrayRef, BinaryArray, BinaryViewArray, FixedSizeListArray, Float64Array, Int32Array,
    Int64Array, LargeBinaryArray, LargeListArray, LargeStringArray, ListArray, StringArray,
    StringViewArray,
};
use arrow::datatypes::DataType;

/// A column read as text: any string encoding, or integers rendered in decimal.
#[derive(Debug, Clone)]
pub(crate) enum TextColumn {
    Utf8(StringArray),
    Large(LargeStringArray),
    View(StringViewArray),
    Int32(Int32Array),
    Int64(Int64Array),
}

impl TextColumn {
    /// Wraps `array` if it has a text-like type.
    pub(crate) fn new(array: &ArrayRef) -> Option<TextColumn> {
        let any = array.as_any();
        if let Some(a) = any.downcast_ref::<StringArray>() {
            return Some(TextColumn::Utf8(a.clone()));
        }
        if let Some(a) = any.downcast_ref::<LargeStringArray>() {
            return Some(TextColumn::Large(a.clone()));
        }
        if let Some(a) = any.downcast_ref::<StringViewArray>() {
            return Some(TextColumn::View(a.clone()));
        }
        if let Some(a) = any.downcast_ref::<Int32Array>() {
            return Some(TextColumn::Int32(a.clone()));
        }
        any.downcast_ref::<Int64Array>()
            .map(|a| TextColumn::Int64(a.clone()))
    }

    /// The value at `row`, or `None` when null or out of range.
    pub(crate) fn get(&self, row: usize) -> Option<String> {
        fn valid(a: &dyn Array, row: usize) -> bool {
            row < a.len() && a.is_valid(row)
        }
        match self {
            TextColumn::Utf8(a) => valid(a, row).then(|| a.value(row).to_string()),
            TextColumn::Large(a) => valid(a, row).then(|| a.value(row).to_string()),
            TextColumn::View(a) => valid(a, row).then(|| a.value(row).to_string()),
            TextColumn::Int32(a) => valid(a, row).then(|| a.value(row).to_string()),
            TextColumn::Int64(a) => valid(a, row).then(|| a.value(row).to_string()),
        }
    }
}

/// A column read as bytes: any binary encoding.
#[derive(Debug, Clone)]
pub(crate) enum BytesColumn {
    Binary(BinaryArray),
    Large(LargeBinaryArray),
    View(BinaryViewArray),
}

impl BytesColumn {
    /// Wraps `array` if it has a binary type.
    pub(crate) fn new(array: &ArrayRef) -> Option<BytesColumn> {
        let any = array.as_any();
        if let Some(a) = any.downcast_ref::<BinaryArray>() {
            return Some(BytesColumn::Binary(a.clone()));
        }
        if let Some(a) = any.downcast_ref::<LargeBinaryArray>() {
            return Some(BytesColumn::Large(a.clone()));
        }
        any.downcast_ref::<BinaryViewArray>()
            .map(|a| BytesColumn::View(a.clone()))
    }

    /// The bytes at `row`, or `None` when null or out of range.
    pub(crate) fn get(&self, row: usize) -> Option<&[u8]> {
        fn valid(a: &dyn Array, row: usize) -> bool {
            row < a.len() && a.is_valid(row)
        }
        match self {
            BytesColumn::Binary(a) => valid(a, row).then(|| a.value(row)),
            BytesColumn::Large(a) => valid(a, row).then(|| a.value(row)),
            BytesColumn::View(a) => valid(a, row).then(|| a.value(row)),
        }
    }

    /// Number of entries, nulls included.
    pub(crate) fn len(&self) -> usize {
        match self {
            BytesColumn::Binary(a) => a.len(),
            BytesColumn::Large(a) => a.len(),
            BytesColumn::View(a) => a.len(),
        }
    }
}

/// An image column: encoded bytes, or a Hugging Face `Image` struct `{bytes, path}` whose
/// `path` (relative to the shard's folder) is read when `bytes` is null.
#[derive(Debug, Clone)]
pub(crate) enum ImageColumn {
    Bytes(BytesColumn),
    HfImage {
        bytes: BytesColumn,
        path: Option<TextColumn>,
        dir: std::path::PathBuf,
    },
}

impl ImageColumn {
    /// Wraps `array` (of a shard in `dir`) if it holds images.
    pub(crate) fn new(array: &ArrayRef, dir: &std::path::Path) -> Option<ImageColumn> {
        if let Some(b) = BytesColumn::new(array) {
            return Some(ImageColumn::Bytes(b));
        }
        let s = array.as_any().downcast_ref::<arrow::array::StructArray>()?;
        Some(ImageColumn::HfImage {
            bytes: BytesColumn::new(s.column_by_name("bytes")?)?,
            path: s.column_by_name("path").and_then(TextColumn::new),
            dir: dir.to_path_buf(),
        })
    }

    /// Row `row`'s encoded image, or why there is none.
    pub(crate) fn get(&self, row: usize) -> std::result::Result<Vec<u8>, String> {
        let null = || "column \"image\" is null".to_string();
        match self {
            ImageColumn::Bytes(b) => b.get(row).map(<[u8]>::to_vec).ok_or_else(null),
            ImageColumn::HfImage { bytes, path, dir } => {
                if let Some(b) = bytes.get(row) {
                    return Ok(b.to_vec());
                }
                let p = path.as_ref().and_then(|p| p.get(row)).ok_or_else(null)?;
                let file = dir.join(&p);
                std::fs::read(&file).map_err(|e| {
                    format!("image file {} (column \"image\".path): {e}", file.display())
                })
            }
        }
    }
}

/// Whether `dt` is a binary type (any encoding).
pub(crate) fn is_binary(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
    )
}

/// Whether `dt` holds images: binary, or a Hugging Face `Image` struct with binary `bytes`.
pub(crate) fn is_image_type(dt: &DataType) -> bool {
    match dt {
        DataType::Struct(fields) => fields
            .iter()
            .any(|f| f.name() == "bytes" && is_binary(f.data_type())),
        _ => is_binary(dt),
    }
}

/// A list column: list<utf8> or list<number>, any list encoding.
#[derive(Debug, Clone)]
pub(crate) struct ListColumn {
    array: ArrayRef,
}

impl ListColumn {
    /// Wraps `array` if it is a list type.
    pub(crate) fn new(array: &ArrayRef) -> Option<ListColumn> {
        matches!(
            array.data_type(),
            DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..)
        )
        .then(|| ListColumn {
            array: array.clone(),
        })
    }

    fn values(&self, row: usize) -> Option<ArrayRef> {
        if row >= self.array.len() || self.array.is_null(row) {
            return None;
        }
        let any = self.array.as_any();
        if let Some(a) = any.downcast_ref::<ListArray>() {
            return Some(a.value(row));
        }
        if let Some(a) = any.downcast_ref::<LargeListArray>() {
            return Some(a.value(row));
        }
        any.downcast_ref::<FixedSizeListArray>()
            .map(|a| a.value(row))
    }

    /// The strings at `row` (None when null, not strings, or holding nulls).
    pub(crate) fn strings(&self, row: usize) -> Option<Vec<String>> {
        let v = self.values(row)?;
        let col = TextColumn::new(&v)?;
        (0..v.len()).map(|i| col.get(i)).collect()
    }

    /// The items at `row` as bytes (None when null or not a list of binary): a video's frames.
    pub(crate) fn byte_items(&self, row: usize) -> Option<BytesColumn> {
        BytesColumn::new(&self.values(row)?)
    }

    /// The numbers at `row` as f64 (None when null, not numeric, or holding nulls).
    pub(crate) fn floats(&self, row: usize) -> Option<Vec<f64>> {
        let v = self.values(row)?;
        let v = arrow::compute::cast(&v, &DataType::Float64).ok()?;
        let f = v.as_any().downcast_ref::<Float64Array>()?;
        (0..f.len())
            .map(|i| f.is_valid(i).then(|| f.value(i)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn text_column_reads_strings_ints_and_nulls() {
        let a: ArrayRef = Arc::new(LargeStringArray::from(vec![Some("x"), None]));
        let c = TextColumn::new(&a).unwrap();
        assert_eq!(c.get(0).as_deref(), Some("x"));
        assert_eq!(c.get(1), None);
        assert_eq!(c.get(2), None);
        let a: ArrayRef = Arc::new(Int64Array::from(vec![42]));
        assert_eq!(TextColumn::new(&a).unwrap().get(0).as_deref(), Some("42"));
        let a: ArrayRef = Arc::new(BinaryArray::from(vec![b"x".as_ref()]));
        assert!(TextColumn::new(&a).is_none());
    }

    #[test]
    fn bytes_column_reads_binary_and_nulls() {
        let a: ArrayRef = Arc::new(BinaryArray::from(vec![Some(b"ab".as_ref()), None]));
        let c = BytesColumn::new(&a).unwrap();
        assert_eq!(c.get(0), Some(b"ab".as_ref()));
        assert_eq!(c.get(1), None);
        let a: ArrayRef = Arc::new(StringArray::from(vec!["x"]));
        assert!(BytesColumn::new(&a).is_none());
    }
}
