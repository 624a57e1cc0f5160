//! A loader's rows without their pixels: prompts, targets, references and labels, read from the
//! text columns alone — what a baseline that never sees the image is fitted on.

use std::collections::BTreeMap;

use super::{plan, Loader};
use crate::error::Result;
use crate::loc::NormBox;

/// One row's text fields.
#[derive(Debug, Clone, PartialEq)]
pub struct RowText {
    /// Row id.
    pub id: String,
    /// The input text: a pair's caption, or a task's prompt.
    pub text: String,
    /// A task's training target (the majority answer, one caption, a box's location tokens).
    pub target: Option<String>,
    /// Every reference caption or answer.
    pub references: Vec<String>,
    /// A detection's true box.
    pub target_box: Option<NormBox>,
    /// Label column → value.
    pub labels: BTreeMap<String, String>,
}

impl Loader {
    /// This rank's readable rows in file order, text columns only (no image is read or
    /// decoded), whole row groups until at least `limit` rows are read.
    pub fn texts(&self, limit: usize) -> Result<Vec<RowText>> {
        let s = &self.source;
        let units = plan::rank_units(s.units.len(), s.seed, 0, false, s.rank, s.world);
        let mut rows = Vec::new();
        for unit in units {
            if rows.len() >= limit {
                break;
            }
            let cols = s.load_texts(unit)?;
            // An unreadable row is skipped, as training skips it.
            rows.extend(
                (0..cols.rows())
                    .filter_map(|row| cols.fields(row).ok())
                    .map(|f| RowText {
                        id: f.id,
                        text: f.text,
                        target: f.target,
                        references: f.references,
                        target_box: f.target_box,
                        labels: s.labels.iter().cloned().zip(f.labels).collect(),
                    }),
            );
        }
        Ok(rows)
    }
}
