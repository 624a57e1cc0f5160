//! Arrow fields and list columns shared by the synthetic task and video writers.

use std::sync::Arc;

use arrow::array::{ArrayRef, ListArray};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field};

/// A non-null utf8 field.
pub(super) fn utf8(n: &str) -> Field {
    Field::new(n, DataType::Utf8, false)
}

/// A non-null list field of non-null `item`s.
pub(super) fn list_of(n: &str, item: DataType) -> Field {
    Field::new(
        n,
        DataType::List(Arc::new(Field::new_list_field(item, false))),
        false,
    )
}

/// A list column of `item`s: `values` cut into consecutive lists of `lengths`.
pub(super) fn list_array(
    item: DataType,
    values: ArrayRef,
    lengths: impl IntoIterator<Item = usize>,
) -> std::result::Result<ArrayRef, String> {
    let field = Arc::new(Field::new_list_field(item, false));
    ListArray::try_new(field, OffsetBuffer::from_lengths(lengths), values, None)
        .map(|a| Arc::new(a) as ArrayRef)
        .map_err(|e| e.to_string())
}
