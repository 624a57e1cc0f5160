//! A bounded shuffle buffer over the row stream (tf.data's `shuffle(buffer_size)`), on top of
//! the per-unit row shuffle: it holds up to `size` rows; each draw takes a uniformly random one
//! and the next row of the stream takes its place. Rows of different row groups therefore meet in
//! one batch even when row groups are large.
//!
//! Exact resume. The buffer restarts at each epoch (it drains at the epoch's end, so every epoch
//! still reads each row once) and draws from one RNG stream keyed by (seed, epoch). Which stream
//! positions come out, and in what order, depends only on the number of rows in the epoch, the
//! buffer size and that stream — never on the rows' contents. So a cursor records only where the
//! epoch's buffered stream began and how many rows were handed out (`Cursor::shuffled`); resuming
//! replays that many draws on positions alone, re-reads the rows still buffered, and continues
//! exactly as an uninterrupted run.

use std::collections::BTreeMap;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::plan::{buffer_rng, Cursor, Shuffled, Span};
use super::source::{RawRow, Source};
use super::stream::{RowStream, TakeRows};
use crate::error::{DataError, Result};

/// Rows read per step while re-filling the buffer on resume (bounds the memory of the re-read).
const REREAD_CHUNK: usize = 256;

/// Replays `taken` draws of a buffer of `size` over a stream of `n` rows from `rng`: returns the
/// stream positions still buffered, in buffer order, and how many positions have been pulled.
///
/// The same steps as [`ShuffleBuffer::take`]: fill up to `size`, draw, swap-remove.
pub(crate) fn replay(
    size: usize,
    n: usize,
    taken: usize,
    rng: &mut ChaCha8Rng,
) -> (Vec<usize>, usize) {
    let mut buffer = Vec::with_capacity(size.min(n));
    let mut next = 0;
    for _ in 0..taken {
        while buffer.len() < size && next < n {
            buffer.push(next);
            next += 1;
        }
        if buffer.is_empty() {
            break;
        }
        let j = rng.random_range(0..buffer.len());
        buffer.swap_remove(j);
    }
    (buffer, next)
}

/// The rows still to read in a buffered epoch from `base` after `taken` draws of a buffer of
/// `size`, as spans: the rows still in the buffer (in stream order), then the stream's rest.
pub(crate) fn remaining_spans(
    src: &Source,
    from: &[Span],
    epoch: u64,
    size: usize,
    taken: usize,
) -> Vec<Span> {
    let n: usize = from.iter().map(|s| s.end_in(usize::MAX) - s.start).sum();
    let (mut buffered, next) = replay(size, n, taken, &mut buffer_rng(src.seed, epoch));
    buffered.sort_unstable();
    // Stream position → (unit, position in its row order), merging neighbours into spans.
    let mut out: Vec<Span> = Vec::new();
    let mut push = |unit: usize, pos: usize, end: usize| match out.last_mut() {
        Some(s) if s.unit == unit && s.end == Some(pos) => s.end = Some(end),
        _ => out.push(Span {
            unit,
            start: pos,
            end: Some(end),
        }),
    };
    let mut offset = 0;
    let mut b = buffered.iter().peekable();
    for s in from {
        let len = s.end_in(usize::MAX) - s.start;
        while let Some(&&p) = b.peek() {
            if p >= offset + len {
                break;
            }
            let pos = s.start + p - offset;
            push(s.unit, pos, pos + 1);
            b.next();
        }
        offset += len;
    }
    // Then every row from `next` on, in stream order.
    let mut offset = 0;
    for s in from {
        let len = s.end_in(usize::MAX) - s.start;
        if offset + len > next {
            let first = s.start + next.saturating_sub(offset);
            push(s.unit, first, s.start + len);
        }
        offset += len;
    }
    out
}

/// This epoch's buffer.
struct EpochState {
    /// Where the epoch's buffered stream began.
    base: Cursor,
    rows: Vec<RawRow>,
    rng: ChaCha8Rng,
    taken: usize,
    /// Rows of the epoch the stream has not yet handed to the buffer.
    left: usize,
}

/// A [`RowStream`] seen through a shuffle buffer of `size` rows (below 2: no buffer).
pub(crate) struct ShuffleBuffer {
    inner: RowStream,
    size: usize,
    state: Option<EpochState>,
    /// A position to restore before the next read (after an error).
    restore: Option<Cursor>,
}

impl TakeRows for ShuffleBuffer {
    fn take(&mut self, src: &Source, n: usize) -> Result<Vec<RawRow>> {
        if let Some(c) = self.restore.take() {
            self.seek(src, &c)?;
        }
        if self.size < 2 {
            return self.inner.take(src, n);
        }
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let st = match &mut self.state {
                Some(st) => st,
                None => {
                    let base = self.inner.cursor();
                    let left = self.inner.rows_to_epoch_end(src);
                    if left == 0 {
                        break; // a rank without rows: the caller reports it
                    }
                    self.state.insert(EpochState {
                        rng: buffer_rng(src.seed, base.epoch),
                        base,
                        rows: Vec::with_capacity(self.size.min(left)),
                        taken: 0,
                        left,
                    })
                }
            };
            if st.rows.len() < self.size && st.left > 0 {
                // Never past the epoch's end: `left` counts its rows exactly.
                let want = (self.size - st.rows.len()).min(st.left);
                let got = self.inner.take(src, want)?;
                if got.len() != want {
                    return Err(DataError::config(
                        "shuffle_buffer",
                        format!("the stream ended {} rows early", want - got.len()),
                    ));
                }
                st.left -= want;
                st.rows.extend(got);
            }
            let j = st.rng.random_range(0..st.rows.len());
            out.push(st.rows.swap_remove(j));
            st.taken += 1;
            if st.rows.is_empty() && st.left == 0 {
                // The epoch is drained; the stream already stands at the next one.
                self.state = None;
            }
        }
        Ok(out)
    }
}

impl ShuffleBuffer {
    /// `inner` seen through a buffer of `size` rows.
    pub(crate) fn new(inner: RowStream, size: usize) -> ShuffleBuffer {
        ShuffleBuffer {
            inner,
            size,
            state: None,
            restore: None,
        }
    }

    /// The buffer's size in rows (below 2: no buffer).
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// What has been handed out.
    pub(crate) fn cursor(&self) -> Cursor {
        if let Some(c) = &self.restore {
            return c.clone();
        }
        match &self.state {
            Some(st) if st.taken > 0 => Cursor {
                shuffled: Some(Shuffled {
                    buffer: self.size,
                    taken: st.taken,
                }),
                ..st.base.clone()
            },
            _ => self.inner.cursor(),
        }
    }

    /// Forgets the buffer, e.g. after an error; the next read restores `c` first.
    pub(crate) fn reset_to(&mut self, c: Cursor) {
        self.inner.reset_to(c.base());
        self.state = None;
        self.restore = Some(c);
    }

    /// Resumes at `c`: replays its draws and re-reads the rows they left in the buffer. A
    /// position saved with another buffer size keeps its rows: the rest of its epoch becomes
    /// this epoch's plan (each row once), read through this buffer.
    pub(crate) fn seek(&mut self, src: &Source, c: &Cursor) -> Result<()> {
        self.state = None;
        self.restore = None;
        self.inner.seek(src, &c.base())?;
        let Some(saved) = c.shuffled.filter(|s| s.taken > 0) else {
            return Ok(());
        };
        if saved.buffer != self.size {
            let from = RowStream::spans_from(src, c, src.rank, src.world, true);
            let rest = remaining_spans(src, &from, c.epoch, saved.buffer, saved.taken);
            tracing::warn!(
                saved = saved.buffer,
                now = self.size,
                "the shuffle buffer changed size; the rest of the epoch is read in a new order"
            );
            let next = match rest.first() {
                Some(s) => Cursor {
                    epoch: c.epoch,
                    unit: 0,
                    row: s.start,
                    plan: Some(rest),
                    shuffled: None,
                },
                None => Cursor::epoch_start(c.epoch + 1),
            };
            return self.inner.seek(src, &next);
        }
        let base = self.inner.cursor();
        let n = self.inner.rows_to_epoch_end(src);
        if saved.taken > n {
            return Err(DataError::config(
                "cursor",
                format!(
                    "epoch {} has {n} rows left at unit {} row {}, fewer than the {} the shuffle buffer handed out",
                    c.epoch, c.unit, c.row, saved.taken
                ),
            ));
        }
        let mut rng = buffer_rng(src.seed, c.epoch);
        let (buffered, next) = replay(self.size, n, saved.taken, &mut rng);
        if buffered.is_empty() && next == n {
            self.inner.advance(src, n);
            return Ok(());
        }
        // Re-read positions lo..next, keeping the buffered ones in their buffer slots.
        let lo = buffered.iter().copied().min().unwrap_or(next);
        let slot: BTreeMap<usize, usize> =
            buffered.iter().enumerate().map(|(k, &p)| (p, k)).collect();
        let mut rows: Vec<Option<RawRow>> = (0..buffered.len()).map(|_| None).collect();
        self.inner.advance(src, lo);
        let mut at = lo;
        while at < next {
            let chunk = (next - at).min(REREAD_CHUNK);
            let got = self
                .inner
                .take_where(src, chunk, &mut |k| slot.contains_key(&(at + k)))?;
            for (k, row) in got {
                rows[slot[&(at + k)]] = Some(row);
            }
            at += chunk;
        }
        let rows = rows
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                DataError::config("cursor", "the shuffle buffer's rows could not be re-read")
            })?;
        self.state = Some(EpochState {
            base,
            rows,
            rng,
            taken: saved.taken,
            left: n - next,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn replay_hands_out_every_position_once_never_one_not_yet_read() {
        let (n, size) = (50, 8);
        let mut order = Vec::new();
        let mut prev: (Vec<usize>, usize) = (Vec::new(), 0);
        for k in 1..=n {
            let (buf, next) = replay(size, n, k, &mut ChaCha8Rng::seed_from_u64(1));
            // Before draw k the buffer was filled: min(k − 1 + size, n) positions pulled.
            assert_eq!(next, (k - 1 + size).min(n), "draw {k}");
            assert_eq!(buf.len(), next - k);
            // Exactly one position left between draws k − 1 and k, one already pulled.
            let out: Vec<usize> = prev
                .0
                .iter()
                .copied()
                .chain(prev.1..next)
                .filter(|p| !buf.contains(p))
                .collect();
            assert_eq!(out.len(), 1, "draw {k}");
            order.push(out[0]);
            prev = (buf, next);
        }
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..n).collect::<Vec<_>>());
        assert_ne!(order, sorted, "the buffer shuffles");
        // A row can only leave after it entered: never more than size − 1 ahead of its turn.
        assert!(order.iter().enumerate().all(|(k, &p)| p < k + size));
    }
}
