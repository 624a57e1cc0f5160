//! Batches prepared ahead on a background thread, so a training step does not wait for
//! decoding when decoding keeps up.
//!
//! A [`Prefetch`] owns a batch source (a [`Loader`] or a [`Mixture`]) and, once asked for a
//! batch, moves it to a thread that fills a bounded channel `depth` batches deep. Each batch
//! travels with the source's position just after it, and [`Prefetch::position`] is the position
//! after the last batch *handed out*: a checkpoint never skips batches that were prepared but not
//! consumed. Seeking, or any other access to the source, stops the thread and rewinds the source
//! to that position first.

use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;

use crate::error::{DataError, Result};
use crate::loader::{Batch, Cursor, Loader};
use crate::mixture::{Mixture, MixtureCursor};

/// A source of batches that can report and restore its position.
pub trait BatchStream: Send + 'static {
    /// A saved position.
    type Position: Clone + Send + 'static;
    /// The next `n` samples.
    fn next_batch_of(&mut self, n: usize) -> Result<Batch>;
    /// The position after the last batch produced.
    fn position(&self) -> Self::Position;
    /// Moves to `p`.
    fn seek_to(&mut self, p: &Self::Position) -> Result<()>;
    /// Continues from every rank's saved position when the number of ranks changed.
    fn seek_resharded(&mut self, _all: &[Self::Position]) -> Result<()> {
        Err(DataError::config(
            "resume",
            "this batch source cannot resume on another number of ranks",
        ))
    }
}

impl BatchStream for Loader {
    type Position = Cursor;
    fn next_batch_of(&mut self, n: usize) -> Result<Batch> {
        Loader::next_batch_of(self, n)
    }
    fn position(&self) -> Cursor {
        self.cursor()
    }
    fn seek_to(&mut self, p: &Cursor) -> Result<()> {
        self.seek(p)
    }
    fn seek_resharded(&mut self, all: &[Cursor]) -> Result<()> {
        Loader::seek_resharded(self, all)
    }
}

impl BatchStream for Mixture {
    type Position = MixtureCursor;
    fn next_batch_of(&mut self, n: usize) -> Result<Batch> {
        self.next_batch(n)
    }
    fn position(&self) -> MixtureCursor {
        self.cursor()
    }
    fn seek_to(&mut self, p: &MixtureCursor) -> Result<()> {
        self.seek(p)
    }
    fn seek_resharded(&mut self, all: &[MixtureCursor]) -> Result<()> {
        Mixture::seek_resharded(self, all)
    }
}

/// What the thread sends: a batch and the position after it, or the error that stopped it.
type Produced<P> = Result<(Batch, P)>;

/// The running thread.
struct Worker<S: BatchStream> {
    /// Samples per batch it prepares.
    n: usize,
    rx: Receiver<Produced<S::Position>>,
    handle: JoinHandle<S>,
}

/// A batch source read ahead on a background thread (`depth` 0: read in the caller's thread).
pub struct Prefetch<S: BatchStream> {
    depth: usize,
    idle: Option<S>,
    worker: Option<Worker<S>>,
    consumed: S::Position,
}

impl<S: BatchStream> Prefetch<S> {
    /// Reads `source` up to `depth` batches ahead; the thread starts with the first request.
    pub fn new(source: S, depth: usize) -> Prefetch<S> {
        Prefetch {
            depth,
            consumed: source.position(),
            idle: Some(source),
            worker: None,
        }
    }

    /// The next `n` samples, in the order the source alone would give them.
    pub fn next_batch(&mut self, n: usize) -> Result<Batch> {
        if self.depth == 0 {
            let s = self.idle.as_mut().ok_or_else(lost)?;
            let b = s.next_batch_of(n)?;
            self.consumed = s.position();
            return Ok(b);
        }
        if self.worker.as_ref().is_some_and(|w| w.n != n) {
            self.stop()?;
        }
        if self.worker.is_none() {
            self.start(n)?;
        }
        let received = match &self.worker {
            Some(w) => w.rx.recv(),
            None => return Err(lost()),
        };
        match received {
            Ok(Ok((batch, position))) => {
                self.consumed = position;
                Ok(batch)
            }
            Ok(Err(e)) => {
                // The thread has stopped after the error; the source rewinds to what was used.
                self.stop()?;
                Err(e)
            }
            Err(_) => {
                self.stop()?;
                Err(DataError::config("prefetch", "the prefetch thread ended"))
            }
        }
    }

    /// The position after the last batch handed out (not the last one prepared).
    pub fn position(&self) -> S::Position {
        self.consumed.clone()
    }

    /// Resumes at `p`.
    pub fn seek(&mut self, p: &S::Position) -> Result<()> {
        self.with_source(|s| s.seek_to(p))
    }

    /// Runs `f` on the source, stopped and rewound to the position handed out so far.
    pub fn with_source<R>(&mut self, f: impl FnOnce(&mut S) -> Result<R>) -> Result<R> {
        self.stop()?;
        let s = self.idle.as_mut().ok_or_else(lost)?;
        let out = f(s);
        self.consumed = s.position();
        out
    }

    fn start(&mut self, n: usize) -> Result<()> {
        let mut source = self.idle.take().ok_or_else(lost)?;
        // A rendezvous channel already holds one batch ready in the blocked sender.
        let (tx, rx) = sync_channel(self.depth - 1);
        let handle = std::thread::Builder::new()
            .name("palisade-prefetch".into())
            .spawn(move || {
                loop {
                    let out = source.next_batch_of(n).map(|b| (b, source.position()));
                    let failed = out.is_err();
                    // The receiver is gone when the owner stops us.
                    if tx.send(out).is_err() || failed {
                        break;
                    }
                }
                source
            })
            .map_err(|e| DataError::config("prefetch", format!("cannot start a thread: {e}")))?;
        self.worker = Some(Worker { n, rx, handle });
        Ok(())
    }

    /// Stops the thread and takes the source back, rewound to the position handed out.
    fn stop(&mut self) -> Result<()> {
        let Some(Worker { rx, handle, .. }) = self.worker.take() else {
            return Ok(());
        };
        // A blocked send now fails; the thread ends after the batch in hand.
        drop(rx);
        let source = handle.join().map_err(|p| {
            let why = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            DataError::config("prefetch", format!("the prefetch thread panicked: {why}"))
        })?;
        let source = self.idle.insert(source);
        source.seek_to(&self.consumed)
    }
}

impl<S: BatchStream> Drop for Prefetch<S> {
    fn drop(&mut self) {
        if let Some(Worker { rx, handle, .. }) = self.worker.take() {
            drop(rx);
            let _ = handle.join();
        }
    }
}

/// A training batch source of any kind (one loader, a mixture) behind one interface, its
/// positions as JSON, as checkpoints store them.
pub trait TrainSource: Send {
    /// The next `n` samples.
    fn next_batch(&mut self, n: usize) -> Result<Batch>;
    /// The position after the last batch handed out.
    fn position(&self) -> serde_json::Value;
    /// Resumes at a position this kind of source saved.
    fn seek(&mut self, p: &serde_json::Value) -> Result<()>;
    /// Resumes from every rank's saved position when the number of ranks changed.
    fn seek_resharded(&mut self, all: &[serde_json::Value]) -> Result<()>;
}

impl<S: BatchStream> TrainSource for Prefetch<S>
where
    S::Position: serde::Serialize + serde::de::DeserializeOwned,
{
    fn next_batch(&mut self, n: usize) -> Result<Batch> {
        Prefetch::next_batch(self, n)
    }
    fn position(&self) -> serde_json::Value {
        serde_json::to_value(&self.consumed).unwrap_or(serde_json::Value::Null)
    }
    fn seek(&mut self, p: &serde_json::Value) -> Result<()> {
        let p = position_of::<S>(p)?;
        Prefetch::seek(self, &p)
    }
    fn seek_resharded(&mut self, all: &[serde_json::Value]) -> Result<()> {
        let all = all
            .iter()
            .map(position_of::<S>)
            .collect::<Result<Vec<_>>>()?;
        self.with_source(|s| s.seek_resharded(&all))
    }
}

/// A saved position read as `S`'s, or an error saying it belongs to another kind of source.
fn position_of<S: BatchStream>(p: &serde_json::Value) -> Result<S::Position>
where
    S::Position: serde::de::DeserializeOwned,
{
    serde_json::from_value(p.clone()).map_err(|e| {
        DataError::config(
            "resume",
            format!(
                "the checkpoint's data position is of another kind (single dataset vs mixture): {e}"
            ),
        )
    })
}

fn lost() -> DataError {
    DataError::config(
        "prefetch",
        "the batch source was lost when its thread failed",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Counts up; remembers how far it was asked to produce.
    struct Counter {
        next: u64,
        produced: Arc<Mutex<u64>>,
        fail_at: Option<u64>,
    }

    impl BatchStream for Counter {
        type Position = u64;
        fn next_batch_of(&mut self, n: usize) -> Result<Batch> {
            if self.fail_at == Some(self.next) {
                self.fail_at = None;
                return Err(DataError::config("test", "bad row group"));
            }
            let ids = (0..n as u64).map(|k| (self.next + k).to_string()).collect();
            self.next += n as u64;
            *self.produced.lock().unwrap() = self.next;
            Ok(Batch {
                size: n,
                ids,
                ..Batch::default()
            })
        }
        fn position(&self) -> u64 {
            self.next
        }
        fn seek_to(&mut self, p: &u64) -> Result<()> {
            self.next = *p;
            Ok(())
        }
    }

    fn counter(fail_at: Option<u64>) -> (Counter, Arc<Mutex<u64>>) {
        let produced = Arc::new(Mutex::new(0));
        (
            Counter {
                next: 0,
                produced: produced.clone(),
                fail_at,
            },
            produced,
        )
    }

    #[test]
    fn reads_ahead_but_reports_what_was_handed_out() {
        let (c, produced) = counter(None);
        let mut p = Prefetch::new(c, 3);
        assert_eq!(p.next_batch(2).unwrap().ids, ["0", "1"]);
        assert_eq!(p.position(), 2);
        // The thread fills the channel: up to 3 batches ahead of the one handed out.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while *produced.lock().unwrap() < 8 && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert_eq!(
            *produced.lock().unwrap(),
            8,
            "3 batches of 2 prepared ahead"
        );
        assert_eq!(p.position(), 2, "prepared batches are not consumed");
        // Seeking rewinds; the next batch starts there.
        p.seek(&10).unwrap();
        assert_eq!(p.next_batch(2).unwrap().ids, ["10", "11"]);
        // A new batch size restarts the thread from the consumed position.
        assert_eq!(p.next_batch(3).unwrap().ids, ["12", "13", "14"]);
        assert_eq!(p.with_source(|s| Ok(s.next)).unwrap(), 15);
    }

    #[test]
    fn an_error_is_returned_in_order_and_the_source_survives() {
        let (c, _) = counter(Some(4));
        let mut p = Prefetch::new(c, 2);
        assert_eq!(p.next_batch(2).unwrap().ids, ["0", "1"]);
        assert_eq!(p.next_batch(2).unwrap().ids, ["2", "3"]);
        let e = p.next_batch(2).unwrap_err().to_string();
        assert!(e.contains("bad row group"), "{e}");
        assert_eq!(p.position(), 4);
        // The failure was transient here: reading again continues where it stopped.
        assert_eq!(p.next_batch(2).unwrap().ids, ["4", "5"]);
    }

    #[test]
    fn depth_zero_reads_in_the_callers_thread() {
        let (c, produced) = counter(None);
        let mut p = Prefetch::new(c, 0);
        p.next_batch(4).unwrap();
        assert_eq!((*produced.lock().unwrap(), p.position()), (4, 4));
    }
}
