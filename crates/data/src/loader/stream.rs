//! A resumable stream of raw rows following the visiting plan.

use super::plan::{rank_units, row_order, Cursor};
use super::source::{RawRow, Source, UnitColumns};
use crate::error::{DataError, Result};

/// The unit currently held in memory.
struct Loaded {
    epoch: u64,
    unit: usize,
    order: Vec<usize>,
    columns: UnitColumns,
}

/// Walks this rank's units epoch after epoch (or for one epoch), one row group in memory.
pub(crate) struct RowStream {
    shuffle: bool,
    wrap: bool,
    pos: Cursor,
    /// This rank's units for `plan_epoch`, each with its first row.
    plan: Vec<(usize, usize)>,
    plan_epoch: Option<u64>,
    current: Option<Loaded>,
}

impl RowStream {
    /// A stream at the start of epoch 0; `wrap` continues into later epochs.
    pub(crate) fn new(shuffle: bool, wrap: bool) -> RowStream {
        RowStream {
            shuffle,
            wrap,
            pos: Cursor::default(),
            plan: Vec::new(),
            plan_epoch: None,
            current: None,
        }
    }

    /// Position of the next row.
    pub(crate) fn cursor(&self) -> Cursor {
        self.pos.clone()
    }

    /// Moves to `c`, which must name an existing row of this rank's plan.
    pub(crate) fn seek(&mut self, src: &Source, c: &Cursor) -> Result<()> {
        if !self.wrap && c.epoch != 0 {
            return Err(cursor_err(
                c,
                "a single-pass stream only has epoch 0".into(),
            ));
        }
        self.plan_epoch = None;
        self.pos = c.clone();
        self.plan_for(src, c.epoch);
        let (unit, _) = *self.plan.get(c.unit).ok_or_else(|| {
            cursor_err(
                c,
                format!(
                    "rank {} has only {} units per epoch",
                    src.rank,
                    self.plan.len()
                ),
            )
        })?;
        let rows = src.units[unit].rows;
        if c.row >= rows {
            return Err(cursor_err(c, format!("its unit has only {rows} rows")));
        }
        if self
            .current
            .as_ref()
            .is_some_and(|l| (l.epoch, l.unit) != (c.epoch, c.unit))
        {
            self.current = None;
        }
        self.pos = c.clone();
        Ok(())
    }

    /// Takes up to `n` rows; fewer only when a single-pass stream runs out.
    pub(crate) fn take(&mut self, src: &Source, n: usize) -> Result<Vec<RawRow>> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n && self.normalize(src) {
            self.ensure_loaded(src)?;
            let Some(loaded) = self.current.as_ref() else {
                break;
            };
            let end = loaded.order.len().min(self.pos.row + n - out.len());
            out.extend(loaded.order[self.pos.row..end].iter().map(|&r| {
                let mut row = loaded.columns.row(r);
                row.epoch = loaded.epoch;
                row
            }));
            self.pos.row = end;
        }
        // Leave the cursor canonical, pointing at a real row (or past the end of a pass).
        self.normalize(src);
        Ok(out)
    }

    /// Forgets the loaded unit, e.g. after an error, so the next read starts afresh.
    pub(crate) fn reset_to(&mut self, c: Cursor) {
        self.pos = c;
        self.current = None;
    }

    /// Advances past finished units and epochs; false when a single pass is over.
    fn normalize(&mut self, src: &Source) -> bool {
        loop {
            self.plan_for(src, self.pos.epoch);
            let Some(&unit) = self.plan.get(self.pos.unit) else {
                if !self.wrap {
                    return false;
                }
                self.pos = Cursor {
                    epoch: self.pos.epoch + 1,
                    unit: 0,
                    row: 0,
                    plan: None,
                };
                continue;
            };
            let (unit, _) = unit;
            if self.pos.row < src.units[unit].rows {
                return true;
            }
            self.pos.unit += 1;
            self.pos.row = self.plan.get(self.pos.unit).map_or(0, |&(_, start)| start);
        }
    }

    fn plan_for(&mut self, src: &Source, epoch: u64) {
        if self.plan_epoch != Some(epoch) {
            // A resharded cursor carries its own plan for the rest of its epoch.
            self.plan = match (&self.pos.plan, self.pos.epoch == epoch) {
                (Some(p), true) => p.clone(),
                _ => rank_units(
                    src.units.len(),
                    src.seed,
                    epoch,
                    self.shuffle,
                    src.rank,
                    src.world,
                )
                .into_iter()
                .map(|u| (u, 0))
                .collect(),
            };
            self.plan_epoch = Some(epoch);
        }
    }

    /// The unit under the cursor, reading it if it is not the one in memory.
    fn ensure_loaded(&mut self, src: &Source) -> Result<()> {
        let (epoch, pos) = (self.pos.epoch, self.pos.unit);
        let fresh = self
            .current
            .as_ref()
            .is_none_or(|l| (l.epoch, l.unit) != (epoch, pos));
        if fresh {
            // Drop the old row group before reading the next, bounding memory to one.
            self.current = None;
            let (unit, _) = self.plan[pos];
            let columns = src.load(unit)?;
            let order = row_order(src.units[unit].rows, src.seed, epoch, unit, self.shuffle);
            self.current = Some(Loaded {
                epoch,
                unit: pos,
                order,
                columns,
            });
        }
        Ok(())
    }
}

fn cursor_err(c: &Cursor, why: String) -> DataError {
    DataError::config(
        "cursor",
        format!(
            "epoch {} unit {} row {} is out of range: {why}",
            c.epoch, c.unit, c.row
        ),
    )
}
