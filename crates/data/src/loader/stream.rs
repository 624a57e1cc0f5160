//! A resumable stream of raw rows following the visiting plan.

use super::plan::{rank_units, row_order, Cursor, Span};
use super::source::{RawRow, Source, UnitColumns};
use crate::error::{DataError, Result};

/// Something rows can be taken from: the plain stream, or the shuffle buffer over it.
pub(crate) trait TakeRows {
    /// Takes up to `n` rows; fewer only when a single-pass stream runs out.
    fn take(&mut self, src: &Source, n: usize) -> Result<Vec<RawRow>>;
}

/// The unit currently held in memory.
struct Loaded {
    epoch: u64,
    /// Global unit id (spans of one unit share its row group and row order).
    unit: usize,
    order: Vec<usize>,
    columns: UnitColumns,
}

/// Walks this rank's units epoch after epoch (or for one epoch), one row group in memory.
pub(crate) struct RowStream {
    shuffle: bool,
    wrap: bool,
    pos: Cursor,
    /// This rank's spans for `plan_epoch`.
    plan: Vec<Span>,
    plan_epoch: Option<u64>,
    current: Option<Loaded>,
}

impl TakeRows for RowStream {
    fn take(&mut self, src: &Source, n: usize) -> Result<Vec<RawRow>> {
        Ok(self
            .take_where(src, n, &mut |_| true)?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }
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

    /// Moves to `c` (its shuffle-buffer part is ignored), which must name an existing row of
    /// this rank's plan.
    pub(crate) fn seek(&mut self, src: &Source, c: &Cursor) -> Result<()> {
        let c = c.base();
        if !self.wrap && c.epoch != 0 {
            return Err(cursor_err(
                &c,
                "a single-pass stream only has epoch 0".into(),
            ));
        }
        self.plan_epoch = None;
        self.pos = c.clone();
        self.plan_for(src, c.epoch);
        let span = *self.plan.get(c.unit).ok_or_else(|| {
            cursor_err(
                &c,
                format!(
                    "rank {} has only {} units per epoch",
                    src.rank,
                    self.plan.len()
                ),
            )
        })?;
        let end = span.end_in(src.units[span.unit].rows);
        if c.row >= end {
            return Err(cursor_err(&c, format!("its unit has only {end} rows")));
        }
        if self
            .current
            .as_ref()
            .is_some_and(|l| (l.epoch, l.unit) != (c.epoch, span.unit))
        {
            self.current = None;
        }
        Ok(())
    }

    /// Takes up to `n` rows (fewer only when a single pass runs out), materialising only those
    /// whose offset from the start of this call `keep` accepts; returns them with their offsets.
    pub(crate) fn take_where(
        &mut self,
        src: &Source,
        n: usize,
        keep: &mut dyn FnMut(usize) -> bool,
    ) -> Result<Vec<(usize, RawRow)>> {
        let mut out = Vec::new();
        let mut done = 0;
        while done < n && self.normalize(src) {
            self.ensure_loaded(src)?;
            let Some(loaded) = self.current.as_ref() else {
                break;
            };
            let span = self.plan[self.pos.unit];
            let end = span.end_in(loaded.order.len()).min(self.pos.row + n - done);
            for (k, &r) in loaded.order[self.pos.row..end].iter().enumerate() {
                if keep(done + k) {
                    let mut row = loaded.columns.row(r);
                    row.epoch = loaded.epoch;
                    out.push((done + k, row));
                }
            }
            done += end - self.pos.row;
            self.pos.row = end;
        }
        // Leave the cursor canonical, pointing at a real row (or past the end of a pass).
        self.normalize(src);
        Ok(out)
    }

    /// Moves `n` rows on without reading them (they must lie within the current epoch).
    pub(crate) fn advance(&mut self, src: &Source, mut n: usize) {
        while n > 0 && self.normalize(src) {
            let span = self.plan[self.pos.unit];
            let step = (span.end_in(src.units[span.unit].rows) - self.pos.row).min(n);
            self.pos.row += step;
            n -= step;
        }
        self.normalize(src);
    }

    /// Rows from the cursor to the end of its epoch.
    pub(crate) fn rows_to_epoch_end(&mut self, src: &Source) -> usize {
        if !self.normalize(src) {
            return 0;
        }
        let spans: usize = self.plan[self.pos.unit..]
            .iter()
            .map(|s| s.end_in(src.units[s.unit].rows) - s.start)
            .sum();
        // Less what this span has already given (normalize keeps `row` ≥ its start).
        spans - (self.pos.row - self.plan[self.pos.unit].start)
    }

    /// The rest of the epoch from `c`, as spans: the cursor's own unit from its row, then the
    /// following ones. `old_rank`/`old_world` give the plan when the cursor carries none.
    pub(crate) fn spans_from(
        src: &Source,
        c: &Cursor,
        old_rank: usize,
        old_world: usize,
        shuffle: bool,
    ) -> Vec<Span> {
        let plan: Vec<Span> = match &c.plan {
            Some(p) => p.clone(),
            None => rank_units(
                src.units.len(),
                src.seed,
                c.epoch,
                shuffle,
                old_rank,
                old_world,
            )
            .into_iter()
            .map(Span::whole)
            .collect(),
        };
        plan.iter()
            .enumerate()
            .skip(c.unit)
            .filter_map(|(k, s)| {
                let end = s.end_in(src.units[s.unit].rows);
                let start = if k == c.unit {
                    c.row.max(s.start)
                } else {
                    s.start
                };
                (start < end).then_some(Span {
                    unit: s.unit,
                    start,
                    end: Some(end),
                })
            })
            .collect()
    }

    /// Forgets the loaded unit, e.g. after an error, so the next read starts afresh.
    pub(crate) fn reset_to(&mut self, c: Cursor) {
        self.pos = c.base();
        self.current = None;
    }

    /// Advances past finished units and epochs; false when a single pass is over.
    fn normalize(&mut self, src: &Source) -> bool {
        loop {
            self.plan_for(src, self.pos.epoch);
            let Some(&span) = self.plan.get(self.pos.unit) else {
                if !self.wrap {
                    return false;
                }
                self.pos = Cursor::epoch_start(self.pos.epoch + 1);
                continue;
            };
            let start = span.start;
            if self.pos.row < start {
                // A resharded plan's span starts inside its unit.
                self.pos.row = start;
            }
            if self.pos.row < span.end_in(src.units[span.unit].rows) {
                return true;
            }
            self.pos.unit += 1;
            self.pos.row = self.plan.get(self.pos.unit).map_or(0, |s| s.start);
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
                .map(Span::whole)
                .collect(),
            };
            self.plan_epoch = Some(epoch);
        }
    }

    /// The unit under the cursor, reading it if it is not the one in memory.
    fn ensure_loaded(&mut self, src: &Source) -> Result<()> {
        let epoch = self.pos.epoch;
        let unit = self.plan[self.pos.unit].unit;
        let fresh = self
            .current
            .as_ref()
            .is_none_or(|l| (l.epoch, l.unit) != (epoch, unit));
        if fresh {
            // Drop the old row group before reading the next, bounding memory to one.
            self.current = None;
            let columns = src.load(unit)?;
            // Remote shards: fetch the next row groups while this one is decoded.
            for next in self
                .plan
                .iter()
                .skip(self.pos.unit + 1)
                .take(crate::remote::readahead())
            {
                src.prefetch(next.unit);
            }
            let order = row_order(src.units[unit].rows, src.seed, epoch, unit, self.shuffle);
            self.current = Some(Loaded {
                epoch,
                unit,
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
