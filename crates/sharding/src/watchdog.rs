//! Collective timeouts: a thread that watches blocking calls and, when one outlives the
//! timeout, hands its name to a callback that stops the job. Blocking MPI calls cannot be
//! interrupted from inside, so a hung rank is ended from beside it instead of hanging silently.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Environment variable with the collective timeout in seconds (0 turns the watchdog off).
pub const TIMEOUT_ENV: &str = "PALISADE_COLLECTIVE_TIMEOUT_S";
/// Timeout when [`TIMEOUT_ENV`] is unset: long enough for rank 0 to write a checkpoint or run
/// an evaluation while the others wait in the next collective.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

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
    active: BTreeMap<u64, (&'static str, Instant)>,
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
        st.active.insert(id, (op, Instant::now()));
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

fn watch_loop(shared: &Shared, timeout: Duration, on_timeout: OnTimeout) {
    let mut st = shared.lock();
    loop {
        if st.shutdown {
            return;
        }
        let oldest = st.active.values().min_by_key(|(_, start)| *start).copied();
        match oldest {
            None => st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner()),
            Some((op, start)) => {
                let waited = start.elapsed();
                if waited >= timeout {
                    drop(st);
                    on_timeout(op, waited);
                    return;
                }
                st = shared
                    .wake
                    .wait_timeout(st, timeout - waited)
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

    #[test]
    fn fires_with_the_name_of_the_stuck_call() {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let dog = Watchdog::new(
            Some(Duration::from_millis(20)),
            Box::new(move |op, _| {
                let _ = tx.lock().unwrap().send(op);
            }),
        );
        let _g = dog.watch("all_gather");
        let op = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("watchdog fired");
        assert_eq!(op, "all_gather");
    }

    #[test]
    fn finished_calls_do_not_fire() {
        let (tx, rx) = mpsc::channel::<&'static str>();
        let tx = Mutex::new(tx);
        let dog = Watchdog::new(
            Some(Duration::from_secs(3600)),
            Box::new(move |op, _| {
                let _ = tx.lock().unwrap().send(op);
            }),
        );
        for _ in 0..100 {
            drop(dog.watch("barrier"));
        }
        drop(dog);
        assert!(rx.try_recv().is_err());
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
