//! Collective timeouts: a thread that watches blocking calls and, when one outlives the
//! timeout, hands its name to a callback that stops the job. Blocking MPI calls cannot be
//! interrupted from inside, so a hung rank is ended from beside it instead of hanging silently.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Environment variable with the collective timeout in seconds (0 turns the watchdog off).
pub const TIMEOUT_ENV: &str = "PALISADE_COLLECTIVE_TIMEOUT_S";
/// Timeout when [`TIMEOUT_ENV`] is unset: a hung rank is found in minutes. Phases where one
/// rank works while the others wait (a checkpoint write, an evaluation) run inside a
/// [`slow_phase`] and get [`SLOW_PHASE_TIMEOUT`] on top.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// Extra time a collective begun inside a [`slow_phase`] may wait.
pub const SLOW_PHASE_TIMEOUT: Duration = Duration::from_secs(1800);

/// Seconds of extra allowance for collectives begun now (0 outside slow phases).
static SLOW_ALLOWANCE_S: AtomicU64 = AtomicU64::new(0);

/// Marks a phase where ranks wait on one another's long local work (rank 0 writing a
/// checkpoint); collectives begun while the guard lives may wait [`SLOW_PHASE_TIMEOUT`] longer.
pub fn slow_phase() -> SlowPhase {
    SLOW_ALLOWANCE_S.store(SLOW_PHASE_TIMEOUT.as_secs(), Ordering::SeqCst);
    SlowPhase(())
}

/// Ends a [`slow_phase`] when dropped.
pub struct SlowPhase(());

impl Drop for SlowPhase {
    fn drop(&mut self) {
        SLOW_ALLOWANCE_S.store(0, Ordering::SeqCst);
    }
}

/// Called once with the collective's name and how long it waited; normally does not return.
pub type OnTimeout = Box<dyn Fn(&'static str, Duration) + Send + 'static>;

/// Watches blocking calls; see the module docs.
pub struct Watchdog {
    shared: Arc<Shared>,
    timeout: Option<Duration>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    next_id: u64,
    /// Watched calls: name, start, and the time they may wait.
    active: BTreeMap<u64, (&'static str, Instant, Duration)>,
    shutdown: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every update is one assignment.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Marks one blocking call as in progress until dropped.
pub struct WatchGuard<'a> {
    dog: &'a Watchdog,
    id: Option<u64>,
}

impl Drop for WatchGuard<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.dog.shared.lock().active.remove(&id);
            self.dog.shared.wake.notify_all();
        }
    }
}

impl Watchdog {
    /// A watchdog calling `on_timeout` when a watched call outlives `timeout` (`None`: never).
    pub fn new(timeout: Option<Duration>, on_timeout: OnTimeout) -> Watchdog {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let thread = timeout.map(|t| {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("palisade-collective-watchdog".into())
                .spawn(move || watch_loop(&shared, t, on_timeout))
                .expect("spawning the collective watchdog thread")
        });
        Watchdog {
            shared,
            timeout,
            thread,
        }
    }

    /// The timeout in force.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Starts watching the call named `op`; it ends when the guard drops.
    pub fn watch(&self, op: &'static str) -> WatchGuard<'_> {
        if self.timeout.is_none() {
            return WatchGuard {
                dog: self,
                id: None,
            };
        }
        let mut st = self.shared.lock();
        let id = st.next_id;
        st.next_id += 1;
        let allowance = Duration::from_secs(SLOW_ALLOWANCE_S.load(Ordering::SeqCst));
        let limit = self.timeout.unwrap_or_default() + allowance;
        st.active.insert(id, (op, Instant::now(), limit));
        drop(st);
        self.shared.wake.notify_all();
        WatchGuard {
            dog: self,
            id: Some(id),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn watch_loop(shared: &Shared, _timeout: Duration, on_timeout: OnTimeout) {
    let mut st = shared.lock();
    loop {
        if st.shutdown {
            return;
        }
        // The call closest to its limit.
        let next = st
            .active
            .values()
            .min_by_key(|(_, start, limit)| *start + *limit)
            .copied();
        match next {
            None => st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner()),
            Some((op, start, limit)) => {
                let waited = start.elapsed();
                if waited >= limit {
                    drop(st);
                    on_timeout(op, waited);
                    return;
                }
                st = shared
                    .wake
                    .wait_timeout(st, limit - waited)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
    }
}

/// Reads [`TIMEOUT_ENV`] through `get`: unset gives [`DEFAULT_TIMEOUT`], 0 turns it off.
pub fn timeout_from(get: impl Fn(&str) -> Option<String>) -> crate::Result<Option<Duration>> {
    match get(TIMEOUT_ENV) {
        None => Ok(Some(DEFAULT_TIMEOUT)),
        Some(v) => {
            let secs: f64 = v
                .trim()
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| crate::ShardingError::BadEnv {
                    var: TIMEOUT_ENV.into(),
                    value: v.clone(),
                    what: "number of seconds (0: no timeout)",
                })?;
            Ok((secs > 0.0).then(|| Duration::from_secs_f64(secs)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Tests that depend on the process-wide slow-phase allowance run one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    /// A watchdog with `timeout` that sends the name of the call it fired on.
    fn reporting(timeout: Duration) -> (Watchdog, mpsc::Receiver<&'static str>) {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let dog = Watchdog::new(
            Some(timeout),
            Box::new(move |op, _| {
                let _ = tx.lock().unwrap().send(op);
            }),
        );
        (dog, rx)
    }

    #[test]
    fn fires_with_the_name_of_the_stuck_call() {
        let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let (dog, rx) = reporting(Duration::from_millis(20));
        let _g = dog.watch("all_gather");
        let op = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("watchdog fired");
        assert_eq!(op, "all_gather");
    }

    #[test]
    fn finished_calls_do_not_fire() {
        let (dog, rx) = reporting(Duration::from_secs(3600));
        for _ in 0..100 {
            drop(dog.watch("barrier"));
        }
        drop(dog);
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_call_begun_in_a_slow_phase_gets_the_extra_allowance() {
        let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        assert!(
            DEFAULT_TIMEOUT < Duration::from_secs(600),
            "a hang is found in minutes"
        );
        let (dog, rx) = reporting(Duration::from_millis(20));
        let slow = slow_phase();
        let _waiting_on_rank_0 = dog.watch("barrier");
        drop(slow);
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
        let _stuck = dog.watch("all_reduce");
        let op = rx.recv_timeout(Duration::from_secs(60)).expect("fired");
        assert_eq!(op, "all_reduce");
    }

    #[test]
    fn timeout_parses_env() {
        assert_eq!(timeout_from(|_| None).unwrap(), Some(DEFAULT_TIMEOUT));
        assert_eq!(timeout_from(|_| Some("0".into())).unwrap(), None);
        assert_eq!(
            timeout_from(|_| Some("2.5".into())).unwrap(),
            Some(Duration::from_millis(2500))
        );
        let err = timeout_from(|_| Some("soon".into())).unwrap_err();
        assert!(err.to_string().contains(TIMEOUT_ENV), "{err}");
    }
}
