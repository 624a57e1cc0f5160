//! Reading COCO-style JSON annotation files: the file whole, each array entry parsed on its own
//! so that an error names the entry and `--skip-missing` can skip just that one.

use std::fmt;
use std::path::Path;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde_json::value::RawValue;

use super::skips::entry_error;
use crate::error::{DataError, Result};

/// Reads an annotation file into memory.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| DataError::io(path, e))
}

/// Parses the top level of `bytes` (arrays kept as raw JSON); the error names `path`.
pub(crate) fn parse_top<'a, T: Deserialize<'a>>(path: &Path, bytes: &'a [u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        DataError::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not the expected JSON layout: {e}"),
            ),
        )
    })
}

/// Parses `array[index]`; the error is an entry error naming both.
pub(crate) fn parse_entry<'a, T: Deserialize<'a>>(
    path: &Path,
    array: &str,
    index: usize,
    raw: &'a RawValue,
) -> Result<T> {
    serde_json::from_str(raw.get())
        .map_err(|e| entry_error(path, format!("{array}[{index}]"), e.to_string()))
}

/// A COCO id: an integer in the official files, also accepted as a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Id(pub String);

impl Id {
    /// The id as an integer, when it is one.
    pub(crate) fn as_u64(&self) -> Option<u64> {
        self.0.parse().ok()
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Id, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or string id")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Id, E> {
                Ok(Id(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Id, E> {
                Ok(Id(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Id, E> {
                Ok(Id(v.to_string()))
            }
        }
        d.deserialize_any(IdVisitor)
    }
}
