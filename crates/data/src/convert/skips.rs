//! Counting entries skipped under `--skip-missing`, with a few examples for the report.

use std::path::PathBuf;

use super::ConvertSummary;
use crate::error::{DataError, Result};

/// How many skip reasons the summary keeps verbatim.
const EXAMPLES: usize = 5;

/// Decides whether a per-entry error stops the conversion or is counted and skipped.
#[derive(Debug, Default)]
pub(crate) struct Skips {
    enabled: bool,
    count: usize,
    examples: Vec<String>,
}

impl Skips {
    /// Skips entry errors when `enabled`; otherwise every error is returned.
    pub(crate) fn new(enabled: bool) -> Skips {
        Skips {
            enabled,
            ..Skips::default()
        }
    }

    /// `Some(value)`, or `None` for an entry error being skipped; other errors pass through.
    pub(crate) fn handle<T>(&mut self, result: Result<T>) -> Result<Option<T>> {
        match result {
            Ok(v) => Ok(Some(v)),
            Err(e @ DataError::Entry { .. }) if self.enabled => {
                tracing::warn!("skipping: {e}");
                self.count += 1;
                if self.examples.len() < EXAMPLES {
                    self.examples.push(e.to_string());
                }
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The summary of a finished conversion.
    pub(crate) fn summary(self, shards: Vec<PathBuf>, rows: usize) -> ConvertSummary {
        ConvertSummary {
            shards,
            rows,
            skipped: self.count,
            skipped_examples: self.examples,
        }
    }
}

/// A per-entry error: `file` holds the entry, `entry` says which one.
pub(crate) fn entry_error(
    file: &std::path::Path,
    entry: impl Into<String>,
    message: impl Into<String>,
) -> DataError {
    DataError::Entry {
        file: file.to_path_buf(),
        entry: entry.into(),
        message: message.into(),
    }
}
