//! Preemption: schedulers warn with a signal before they kill (Slurm sends SIGTERM, or the
//! signal `--signal` names, e.g. SIGUSR1; `palisade launch` forwards SIGTERM and SIGHUP). The
//! handler only records the signal; the loop finishes its step, every rank agrees on stopping
//! (the flag travels with the step's loss reduction), a checkpoint is written, and the process
//! exits with [`PREEMPTED_EXIT`] so a job script can requeue itself and continue with --resume.

use crate::error::{Result, TrainerError};
use std::sync::atomic::{AtomicI32, Ordering};

/// Exit code of a run stopped by a preemption signal after writing its checkpoint
/// (EX_TEMPFAIL: try again later).
pub const PREEMPTED_EXIT: i32 = 75;

/// The signal received and not yet acted on (0: none).
static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    RECEIVED.store(sig, Ordering::SeqCst);
}

/// The signal number of a name in `train.preempt_signals` (`TERM`, `SIGUSR1`, `HUP`, ...).
pub fn signal_number(name: &str) -> Option<i32> {
    let n = name.trim().trim_start_matches("SIG").to_ascii_uppercase();
    Some(match n.as_str() {
        "TERM" => libc::SIGTERM,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "CONT" => libc::SIGCONT,
        _ => return None,
    })
}

/// Checks `train.preempt_signals`.
pub fn validate(names: &[String]) -> std::result::Result<(), String> {
    match names.iter().find(|n| signal_number(n).is_none()) {
        Some(bad) => Err(format!(
            "key train.preempt_signals: {bad:?} is not one of TERM, USR1, USR2, HUP, INT, CONT"
        )),
        None => Ok(()),
    }
}

/// The installed handlers; the previous ones come back when dropped.
pub struct PreemptGuard(Vec<(libc::c_int, libc::sighandler_t)>);

impl PreemptGuard {
    /// Records the signals `names` from now on instead of dying of them.
    pub fn install(names: &[String]) -> Result<PreemptGuard> {
        RECEIVED.store(0, Ordering::SeqCst);
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        let mut old = Vec::new();
        for name in names {
            let sig = signal_number(name).ok_or_else(|| {
                TrainerError::Config(format!("train.preempt_signals: unknown signal {name:?}"))
            })?;
            // SAFETY: installs a handler that only stores to an atomic.
            old.push((sig, unsafe { libc::signal(sig, handler) }));
        }
        Ok(PreemptGuard(old))
    }

    /// The signal received since installation, if any.
    pub fn received(&self) -> Option<i32> {
        Some(RECEIVED.load(Ordering::SeqCst)).filter(|&s| s != 0)
    }
}

impl Drop for PreemptGuard {
    fn drop(&mut self) {
        // Once preempted the process is on its way out: a repeated signal must not kill it
        // before it exits with PREEMPTED_EXIT.
        if self.received().is_some() {
            return;
        }
        for &(sig, old) in self.0.iter().rev() {
            // SAFETY: puts back the handler that was there before `install`.
            unsafe { libc::signal(sig, old) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_signals_and_a_signal_is_recorded_not_fatal() {
        assert_eq!(signal_number("SIGUSR1"), Some(libc::SIGUSR1));
        assert_eq!(signal_number("term"), Some(libc::SIGTERM));
        assert!(validate(&["KILL".into()]).unwrap_err().contains("\"KILL\""));
        let guard = PreemptGuard::install(&["USR2".into()]).unwrap();
        assert_eq!(guard.received(), None);
        // SAFETY: raises a signal this test handles.
        unsafe { libc::raise(libc::SIGUSR2) };
        assert_eq!(guard.received(), Some(libc::SIGUSR2));
    }
}
