//! Converters (`palisade_data::convert`) on small fixtures in the official formats, and Parquet
//! interop both ways: shards pyarrow writes read by palisade's loader, shards palisade writes
//! read by pyarrow and Hugging Face `datasets`. The Python side runs from `$PALISADE_PYTHON`;
//! these tests fail without it.

#[path = "interop/common.rs"]
mod common;
#[path = "interop/fixtures.rs"]
mod fixtures;

#[path = "interop/captions_vqa.rs"]
mod captions_vqa;
#[path = "interop/from_pyarrow.rs"]
mod from_pyarrow;
#[path = "interop/refcoco.rs"]
mod refcoco;
#[path = "interop/to_python.rs"]
mod to_python;
#[path = "interop/webli_sources.rs"]
mod webli_sources;
#[path = "interop/writer_layout.rs"]
mod writer_layout;
