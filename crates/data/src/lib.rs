//! Data for palisade: specs, Parquet shards, image preprocessing, tokenizer, synthetic
//! scenes and the streaming loader. Knows nothing of models.

pub mod augment;
mod column;
pub mod convert;
pub mod error;
pub mod image_ops;
pub mod inspect;
pub mod jpeg;
pub mod loader;
pub mod loc;
pub mod mixture;
pub mod prefetch;
pub mod prompts;
pub mod remote;
mod row_id;
pub mod section;
pub mod sentencepiece;
pub mod shard_writer;
pub mod shards;
pub mod spec;
pub mod synth;
pub mod tokenizer;

pub use error::{DataError, Result};
pub use image_ops::{decode_rgb, to_model_input};
pub use loader::{one_pass, Batch, Cursor, EpochBatches, Loader, LoaderConfig, RowFormat, RowText};
pub use prefetch::{BatchStream, Prefetch, TrainSource};
pub use section::{DataSection, InputSize, MixtureSource, RankShare, Split};
pub use shards::{resolve_all, resolve_shards, ShardIndex, ShardInfo, Unit};
pub use spec::{ColumnSpec, ColumnType, DataSpec, ExtraColumns};
pub use synth::{
    has_parquet, write_shapes, write_shapes_tasks, write_task_tokenizer, write_video_tasks,
    ShapesConfig, ShapesSummary, SynthKind, SynthSection, Task, TasksSummary, VideoConfig,
    VideoSummary, COLORS, SHAPES,
};
pub use tokenizer::{loc_token, train_tokenizer_for, TextTokenizer, LOC_TOKENS};
