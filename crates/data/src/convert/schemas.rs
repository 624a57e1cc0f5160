//! The row types converters produce and their Arrow schemas (the column layouts of the
//! `webli`, `caption`, `vqa` and `refcoco` specs).

use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryArray, Float64Array, Int32Array, ListArray, StringArray};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::writer::ConvertRow;

/// A `webli` row: one image and its caption.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WebliRow {
    pub image: Vec<u8>,
    pub text: String,
    pub lang: String,
    pub id: String,
}

/// A `caption` row: one image and all of its reference captions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CaptionRow {
    pub image: Vec<u8>,
    pub captions: Vec<String>,
    pub lang: String,
    pub image_id: String,
}

/// A `vqa` row: one question about an image and its human answers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct VqaRow {
    pub image: Vec<u8>,
    pub question: String,
    pub answers: Vec<String>,
    pub multiple_choice_answer: String,
    pub question_id: String,
    pub question_type: String,
    pub answer_type: String,
    pub image_id: String,
    pub lang: String,
}

/// A `refcoco` row: one referring expression and the box it names.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RefcocoRow {
    pub image: Vec<u8>,
    pub expression: String,
    /// `[x, y, w, h]` in pixels, top-left origin.
    pub bbox: [f64; 4],
    pub width: i32,
    pub height: i32,
    pub ref_id: String,
    pub sent_id: String,
    pub split: String,
    pub image_id: String,
    pub lang: String,
}

fn text(name: &str) -> Field {
    Field::new(name, DataType::Utf8, false)
}

fn list_of(name: &str, item: DataType) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new_list_field(item, false))),
        false,
    )
}

fn image() -> Field {
    Field::new("image", DataType::Binary, false)
}

/// Schema of converted `webli` shards: image, text, lang, id.
pub fn webli_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        image(),
        text("text"),
        text("lang"),
        text("id"),
    ]))
}

/// Schema of `caption` shards: image, captions, lang, image_id, id (= image_id).
pub fn caption_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        image(),
        list_of("captions", DataType::Utf8),
        text("lang"),
        text("image_id"),
        text("id"),
    ]))
}

/// Schema of `vqa` shards; `multiple_choice_answer` is VQAv2's consensus answer, an extra.
pub fn vqa_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        image(),
        text("question"),
        list_of("answers", DataType::Utf8),
        text("question_id"),
        text("question_type"),
        text("answer_type"),
        text("image_id"),
        text("lang"),
        text("multiple_choice_answer"),
    ]))
}

/// Schema of `refcoco` shards; `box` is `[x, y, w, h]` in pixels.
pub fn refcoco_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        image(),
        text("expression"),
        list_of("box", DataType::Float64),
        Field::new("width", DataType::Int32, false),
        Field::new("height", DataType::Int32, false),
        text("ref_id"),
        text("sent_id"),
        text("split"),
        text("image_id"),
        text("lang"),
    ]))
}

fn strings<R>(rows: &[R], f: impl Fn(&R) -> &str) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
}

fn images<R>(rows: &[R], f: impl Fn(&R) -> &[u8]) -> ArrayRef {
    Arc::new(BinaryArray::from_iter_values(rows.iter().map(f)))
}

fn string_lists<R>(rows: &[R], f: impl Fn(&R) -> &[String]) -> ArrayRef {
    let values = StringArray::from_iter_values(rows.iter().flat_map(|r| f(r).iter()));
    let offsets = OffsetBuffer::from_lengths(rows.iter().map(|r| f(r).len()));
    let field = Arc::new(Field::new_list_field(DataType::Utf8, false));
    Arc::new(ListArray::new(field, offsets, Arc::new(values), None))
}

fn boxes(rows: &[RefcocoRow]) -> ArrayRef {
    let values = Float64Array::from_iter_values(rows.iter().flat_map(|r| r.bbox));
    let offsets = OffsetBuffer::from_lengths(rows.iter().map(|r| r.bbox.len()));
    let field = Arc::new(Field::new_list_field(DataType::Float64, false));
    Arc::new(ListArray::new(field, offsets, Arc::new(values), None))
}

impl ConvertRow for WebliRow {
    const SPEC: &'static str = "webli";
    fn schema() -> SchemaRef {
        webli_schema()
    }

    fn columns(rows: &[Self]) -> Vec<ArrayRef> {
        vec![
            images(rows, |r| &r.image),
            strings(rows, |r| &r.text),
            strings(rows, |r| &r.lang),
            strings(rows, |r| &r.id),
        ]
    }
}

impl ConvertRow for CaptionRow {
    const SPEC: &'static str = "caption";
    fn schema() -> SchemaRef {
        caption_schema()
    }

    fn columns(rows: &[Self]) -> Vec<ArrayRef> {
        vec![
            images(rows, |r| &r.image),
            string_lists(rows, |r| &r.captions),
            strings(rows, |r| &r.lang),
            strings(rows, |r| &r.image_id),
            strings(rows, |r| &r.image_id),
        ]
    }
}

impl ConvertRow for VqaRow {
    const SPEC: &'static str = "vqa";
    fn schema() -> SchemaRef {
        vqa_schema()
    }

    fn columns(rows: &[Self]) -> Vec<ArrayRef> {
        vec![
            images(rows, |r| &r.image),
            strings(rows, |r| &r.question),
            string_lists(rows, |r| &r.answers),
            strings(rows, |r| &r.question_id),
            strings(rows, |r| &r.question_type),
            strings(rows, |r| &r.answer_type),
            strings(rows, |r| &r.image_id),
            strings(rows, |r| &r.lang),
            strings(rows, |r| &r.multiple_choice_answer),
        ]
    }
}

impl ConvertRow for RefcocoRow {
    const SPEC: &'static str = "refcoco";
    fn schema() -> SchemaRef {
        refcoco_schema()
    }

    fn columns(rows: &[Self]) -> Vec<ArrayRef> {
        vec![
            images(rows, |r| &r.image),
            strings(rows, |r| &r.expression),
            boxes(rows),
            Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.width))),
            Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.height))),
            strings(rows, |r| &r.ref_id),
            strings(rows, |r| &r.sent_id),
            strings(rows, |r| &r.split),
            strings(rows, |r| &r.image_id),
            strings(rows, |r| &r.lang),
        ]
    }
}
