//! The indexed dataset as one rank sees it, and reading a unit's columns.

use std::path::Path;

use arrow::array::RecordBatch;

use arrow::datatypes::DataType;

use super::format::{FormatColumns, RowFormat};
use super::frames::select_frames;
use super::plan::units_per_rank;
use crate::column::{is_binary, is_image_type, ImageColumn, ListColumn, TextColumn};
use crate::error::{DataError, Result};
use crate::shards::{ShardIndex, Unit};

/// Column holding encoded image bytes.
pub const IMAGE_COLUMN: &str = "image";
/// Column holding the caption.
pub const TEXT_COLUMN: &str = "text";
/// Optional column holding a stable row id.
pub const ID_COLUMN: &str = "id";
/// img2dataset's per-row download status (`success`, `failed_to_download`, …).
pub const STATUS_COLUMN: &str = "status";
/// The img2dataset download status of a row that holds its image.
pub const STATUS_OK: &str = "success";
/// Column holding a video clip's encoded frames (`list<binary>`, in time order).
pub const FRAMES_COLUMN: &str = "frames";

/// What a row's pixels come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MediaKind {
    /// One encoded image in [`IMAGE_COLUMN`].
    Image,
    /// A clip in [`FRAMES_COLUMN`], of which at most this many frames are used.
    Video { max_frames: usize },
}

impl MediaKind {
    /// The column holding the pixels.
    pub(crate) fn column(self) -> &'static str {
        match self {
            MediaKind::Image => IMAGE_COLUMN,
            MediaKind::Video { .. } => FRAMES_COLUMN,
        }
    }
}

/// A row's encoded pixels.
#[derive(Debug)]
pub(crate) enum Media {
    /// An image's bytes.
    Image(Vec<u8>),
    /// The frames chosen from a clip: (index in the clip, bytes), in time order, at least one.
    Frames(Vec<(usize, Vec<u8>)>),
}

/// Where a row came from, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Origin {
    pub shard: usize,
    pub row_group: usize,
    pub row: usize,
}

/// A row's text fields: everything but its pixels.
#[derive(Debug)]
pub(crate) struct TextFields {
    pub id: String,
    /// The input text: a pair's caption, or a task's prompt.
    pub text: String,
    /// A task's target text.
    pub target: Option<String>,
    /// Every reference (captions, answers) and a detection's true box, for evaluation.
    pub references: Vec<String>,
    pub target_box: Option<crate::loc::NormBox>,
    /// The label columns' values, in the loader's label order.
    pub labels: Vec<String>,
}

/// A row's raw fields, before decoding.
#[derive(Debug)]
pub(crate) struct RawFields {
    pub texts: TextFields,
    pub media: Media,
}

/// A row as read: its origin and either its fields or why it must be skipped.
#[derive(Debug)]
pub(crate) struct RawRow {
    pub origin: Origin,
    /// Epoch the row is read in (set by the stream; keys augmentation).
    pub epoch: u64,
    pub fields: std::result::Result<RawFields, String>,
}

/// The columns of one loaded unit.
pub(crate) struct UnitColumns {
    media: MediaColumn,
    texts: UnitTexts,
}

impl UnitColumns {
    /// Extracts row `row` of the row group.
    pub(crate) fn row(&self, row: usize) -> RawRow {
        let origin = Origin {
            shard: self.texts.shard,
            row_group: self.texts.row_group,
            row,
        };
        let fields = self.media.get(row).and_then(|media| {
            Ok(RawFields {
                texts: self.texts.fields(row)?,
                media,
            })
        });
        RawRow {
            origin,
            epoch: 0,
            fields,
        }
    }
}

/// A loaded unit's text columns: everything but the pixels.
pub(crate) struct UnitTexts {
    shard: usize,
    row_group: usize,
    format: RowFormat,
    columns: FormatColumns,
    id: Option<TextColumn>,
    /// img2dataset's download status, when the spec and the shard have it.
    status: Option<TextColumn>,
    labels: Vec<(String, TextColumn)>,
    /// Rows in the row group.
    rows_in: usize,
    /// Used as the id prefix when the shard has no id column.
    file_name: String,
}

impl UnitTexts {
    /// Rows in the unit.
    pub(crate) fn rows(&self) -> usize {
        self.rows_in
    }

    /// Row `row`'s text fields, or why it must be skipped.
    pub(crate) fn fields(&self, row: usize) -> std::result::Result<TextFields, String> {
        if let Some(status) = &self.status {
            let s = status.get(row).unwrap_or_default();
            if s != STATUS_OK {
                return Err(format!("img2dataset status {s:?}, not {STATUS_OK:?}"));
            }
        }
        let id = match &self.id {
            Some(col) => col
                .get(row)
                .ok_or_else(|| format!("column {ID_COLUMN:?} is null"))?,
            None => format!("{}#{}:{row}", self.file_name, self.row_group),
        };
        // Which of several reference captions to train on: fixed per row.
        let pick = crate::row_id::id_hash(&id);
        let r = self.columns.render(&self.format, row, pick)?;
        let labels = self
            .labels
            .iter()
            .map(|(name, col)| {
                col.get(row)
                    .ok_or_else(|| format!("column {name:?} is null"))
            })
            .collect::<std::result::Result<_, _>>()?;
        Ok(TextFields {
            id,
            text: r.text,
            target: r.target,
            references: r.references,
            target_box: r.target_box,
            labels,
        })
    }
}

/// A unit's pixel column.
enum MediaColumn {
    Image(Box<ImageColumn>),
    Video {
        frames: ListColumn,
        max_frames: usize,
    },
}

impl MediaColumn {
    /// Row `row`'s pixels: the image, or the chosen frames of the clip.
    fn get(&self, row: usize) -> std::result::Result<Media, String> {
        match self {
            MediaColumn::Image(col) => col.get(row).map(Media::Image),
            MediaColumn::Video { frames, max_frames } => {
                let items = frames.byte_items(row).ok_or_else(|| {
                    format!("column {FRAMES_COLUMN:?} is null or not a list of binary")
                })?;
                let chosen = select_frames(items.len(), *max_frames);
                if chosen.is_empty() {
                    return Err(format!("column {FRAMES_COLUMN:?} is an empty list"));
                }
                // Only the chosen frames are copied (and later decoded).
                chosen
                    .into_iter()
                    .map(|i| {
                        items
                            .get(i)
                            .map(|b| (i, b.to_vec()))
                            .ok_or_else(|| format!("column {FRAMES_COLUMN:?}: frame {i} is null"))
                    })
                    .collect::<std::result::Result<_, _>>()
                    .map(Media::Frames)
            }
        }
    }
}

/// The shards, their units, and which of them this rank reads.
pub(crate) struct Source {
    pub index: ShardIndex,
    pub format: RowFormat,
    pub media: MediaKind,
    pub units: Vec<Unit>,
    pub labels: Vec<String>,
    pub seed: u64,
    pub rank: usize,
    pub world: usize,
    /// Language of rows without a `lang` value.
    pub lang: String,
    /// Whether rows carry an img2dataset `status` (the spec lists it): only `success` is read.
    pub status: bool,
}

impl Source {
    /// Checks the loader's columns exist with usable types in every shard.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        index: ShardIndex,
        spec: &crate::spec::DataSpec,
        format: RowFormat,
        media: MediaKind,
        labels: Vec<String>,
        seed: u64,
        rank: usize,
        world: usize,
    ) -> Result<Source> {
        for shard in index.shards() {
            let schema = shard.schema();
            let check =
                |name: &str, ok: fn(&DataType) -> bool, want: &str, required: bool| match schema
                    .field_with_name(name)
                {
                    Ok(f) if !ok(f.data_type()) => Err(DataError::Schema {
                        file: shard.path().to_path_buf(),
                        column: name.to_string(),
                        message: format!("has type {}, the loader needs {want}", f.data_type()),
                    }),
                    Err(_) if required => Err(DataError::Schema {
                        file: shard.path().to_path_buf(),
                        column: name.to_string(),
                        message: format!(
                            "needed by the loader but missing (map another column to it with \
                             `columns: {{{name}: ...}}`); the file's columns are {}",
                            crate::shards::column_names(schema).join(", ")
                        ),
                    }),
                    _ => Ok(()),
                };
            match media {
                MediaKind::Image => check(
                    IMAGE_COLUMN,
                    is_image_type,
                    "binary or a {bytes, path} image struct",
                    true,
                )?,
                MediaKind::Video { .. } => {
                    check(FRAMES_COLUMN, is_binary_list, "a list of binary", true)?
                }
            }
            let has = |n: &str| schema.field_with_name(n).is_ok();
            for (name, required) in format.columns(has) {
                let (ok, want): (fn(&DataType) -> bool, &str) = match name {
                    "captions" | "answers" | "box" => (is_list, "a list"),
                    _ => (is_text, "utf8 or integer"),
                };
                check(name, ok, want, required)?;
            }
            check(ID_COLUMN, is_text, "utf8 or integer", false)?;
            check(STATUS_COLUMN, is_text, "utf8", false)?;
            for label in &labels {
                check(label, is_text, "utf8 or integer (a label column)", true)?;
            }
        }
        let units = index.units();
        if units_per_rank(units.len(), rank, world) == 0 {
            return Err(DataError::EmptyDataset {
                rank,
                world,
                shards: format!(
                    "{} ({} rows in {} row groups)",
                    index.describe(),
                    index.total_rows(),
                    units.len()
                ),
            });
        }
        Ok(Source {
            index,
            format,
            media,
            units,
            labels,
            seed,
            rank,
            world,
            lang: spec.binding.lang().to_string(),
            status: spec.column(STATUS_COLUMN).is_some(),
        })
    }

    /// The file of shard `shard`.
    pub(crate) fn path(&self, shard: usize) -> &Path {
        self.index.shards()[shard].path()
    }

    /// Reads global unit `unit`, projecting only the loader's columns.
    pub(crate) fn load(&self, unit: usize) -> Result<UnitColumns> {
        let (batch, texts) = self.read(unit, true)?;
        let column = |name: &str| column_of(&batch, name, &texts, self);
        let bad_type = |name: &str| bad_type(name, &texts, self);
        let media = match self.media {
            MediaKind::Image => {
                let dir = self.path(texts.shard).parent().unwrap_or(Path::new("."));
                MediaColumn::Image(Box::new(
                    ImageColumn::new(column(IMAGE_COLUMN)?, dir)
                        .ok_or_else(|| bad_type(IMAGE_COLUMN))?,
                ))
            }
            MediaKind::Video { max_frames } => MediaColumn::Video {
                frames: ListColumn::new(column(FRAMES_COLUMN)?)
                    .ok_or_else(|| bad_type(FRAMES_COLUMN))?,
                max_frames,
            },
        };
        Ok(UnitColumns { media, texts })
    }

    /// Reads global unit `unit`'s text columns only (no pixels).
    pub(crate) fn load_texts(&self, unit: usize) -> Result<UnitTexts> {
        Ok(self.read(unit, false)?.1)
    }

    /// Starts fetching unit `unit` ahead of its turn (object storage only: local files have
    /// the page cache, and cost nothing here).
    pub(crate) fn prefetch(&self, unit: usize) {
        let Unit {
            shard, row_group, ..
        } = self.units[unit];
        let info = &self.index.shards()[shard];
        if info.is_remote() {
            info.prefetch_row_group(row_group, &self.read_columns(unit, true));
        }
    }

    /// The format's columns shard `shard` has.
    fn text_columns(&self, shard: usize) -> Vec<&'static str> {
        let info = &self.index.shards()[shard];
        self.format
            .columns(|n| info.has_column(n))
            .into_iter()
            .filter(|(n, _)| info.has_column(n))
            .map(|(n, _)| n)
            .collect()
    }

    /// Every column read of unit `unit` (the pixels too when `media`), sorted.
    fn read_columns(&self, unit: usize, media: bool) -> Vec<&str> {
        let info = &self.index.shards()[self.units[unit].shard];
        let mut names: Vec<&str> = Vec::new();
        if media {
            names.push(self.media.column());
        }
        names.extend(self.text_columns(self.units[unit].shard));
        if info.has_column(ID_COLUMN) {
            names.push(ID_COLUMN);
        }
        if self.status && info.has_column(STATUS_COLUMN) {
            names.push(STATUS_COLUMN);
        }
        names.extend(self.labels.iter().map(String::as_str));
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Reads unit `unit`'s columns (the pixel column too when `media`) and wraps its text ones.
    fn read(&self, unit: usize, media: bool) -> Result<(RecordBatch, UnitTexts)> {
        let Unit {
            shard,
            row_group,
            rows,
        } = self.units[unit];
        let info = &self.index.shards()[shard];
        let wanted = self.text_columns(shard);
        let names = self.read_columns(unit, media);
        let (has_id, has_status) = (names.contains(&ID_COLUMN), names.contains(&STATUS_COLUMN));
        let batch = info.read_row_group(row_group, &names)?;
        let mut texts = UnitTexts {
            shard,
            row_group,
            rows_in: rows,
            format: self.format.clone(),
            columns: FormatColumns {
                text: Default::default(),
                lists: Default::default(),
                lang: self.lang.clone(),
            },
            id: None,
            status: None,
            labels: Vec::new(),
            file_name: info
                .path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        for name in wanted {
            let array = column_of(&batch, name, &texts, self)?;
            if is_list(array.data_type()) {
                let col = ListColumn::new(array).ok_or_else(|| bad_type(name, &texts, self))?;
                texts.columns.lists.insert(name, col);
            } else {
                let col = TextColumn::new(array).ok_or_else(|| bad_type(name, &texts, self))?;
                texts.columns.text.insert(name, col);
            }
        }
        if has_id {
            let array = column_of(&batch, ID_COLUMN, &texts, self)?;
            texts.id =
                Some(TextColumn::new(array).ok_or_else(|| bad_type(ID_COLUMN, &texts, self))?);
        }
        if has_status {
            let array = column_of(&batch, STATUS_COLUMN, &texts, self)?;
            let col =
                TextColumn::new(array).ok_or_else(|| bad_type(STATUS_COLUMN, &texts, self))?;
            texts.status = Some(col);
        }
        for name in &self.labels {
            let array = column_of(&batch, name, &texts, self)?;
            let col = TextColumn::new(array).ok_or_else(|| bad_type(name, &texts, self))?;
            texts.labels.push((name.clone(), col));
        }
        Ok((batch, texts))
    }
}

/// Column `name` of a unit's record batch; an error names the file and row group.
fn column_of<'a>(
    batch: &'a RecordBatch,
    name: &str,
    unit: &UnitTexts,
    src: &Source,
) -> Result<&'a arrow::array::ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| DataError::RowGroup {
            file: src.path(unit.shard).to_path_buf(),
            row_group: unit.row_group,
            message: format!("column {name:?} missing from the data read"),
        })
}

fn bad_type(name: &str, unit: &UnitTexts, src: &Source) -> DataError {
    DataError::RowGroup {
        file: src.path(unit.shard).to_path_buf(),
        row_group: unit.row_group,
        message: format!("column {name:?} decoded with an unusable type"),
    }
}

fn is_binary_list(dt: &DataType) -> bool {
    match dt {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            is_binary(f.data_type())
        }
        _ => false,
    }
}

fn is_list(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..)
    )
}

fn is_text(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Int32
            | DataType::Int64
    )
}
