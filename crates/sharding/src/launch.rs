//! The launcher behind `palisade launch`: starts this node's ranks as child processes with
//! `PALISADE_RANK`, `PALISADE_WORLD_SIZE`, `PALISADE_LOCAL_RANK`, `PALISADE_LOCAL_WORLD_SIZE`
//! and `PALISADE_MASTER` set,
//! prefixes every line they print with `[rank K]`, forwards SIGINT and SIGTERM to them (SIGHUP,
//! a closed terminal, as SIGTERM), and when one rank fails stops the others and reports that
//! rank's exit code. Ranks die with the launcher: each gets SIGTERM from the kernel when the
//! launcher dies, however it dies (kill -9, the OOM killer), and stopped ranks are killed at
//! once rather than waited on.
//!
//! The ranks meet over TCP at the master address ([`crate::tcp_group`]); MPI cannot join
//! processes that an MPI launcher did not start.

use crate::error::{Result, ShardingError};
use crate::tcp_group::MASTER_ENV;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where prefixed lines go (the launcher's stdout or stderr, or a buffer in tests).
pub type Sink = Arc<Mutex<dyn Write + Send>>;

/// What to start on this node.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    /// Program every rank runs (the `palisade` binary itself for `palisade launch`).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Ranks on this node.
    pub nproc_per_node: usize,
    /// Nodes in the job.
    pub nnodes: usize,
    /// This node's index.
    pub node_rank: usize,
    /// `HOST:PORT` where rank 0 listens.
    pub master: String,
    /// Time between SIGTERM and SIGKILL when ranks are stopped.
    pub grace: Duration,
    /// Extra environment for every rank.
    pub env: Vec<(OsString, OsString)>,
}

impl LaunchSpec {
    /// Checks the numbers make a job.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| ShardingError::Init {
            backend: "launch",
            msg,
        };
        if self.nproc_per_node == 0 || self.nnodes == 0 {
            return Err(bad(
                "--nproc-per-node and --nnodes must be at least 1".into()
            ));
        }
        if self.node_rank >= self.nnodes {
            return Err(bad(format!(
                "--node-rank {} is not below --nnodes {}",
                self.node_rank, self.nnodes
            )));
        }
        if !self.master.contains(':') {
            return Err(bad(format!("--master {:?} is not HOST:PORT", self.master)));
        }
        Ok(())
    }
}

/// `127.0.0.1:PORT` with a port that was free a moment ago (for single-node jobs).
pub fn local_master() -> Result<String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| ShardingError::Init {
        backend: "launch",
        msg: format!("no free local port for the rendezvous: {e}"),
    })?;
    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
    Ok(format!("127.0.0.1:{port}"))
}

/// The last SIGINT/SIGTERM/SIGHUP received and not yet forwarded (0: none).
static PENDING: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    PENDING.store(sig, Ordering::SeqCst);
}

/// Asks a running [`run`] to forward `sig` to its ranks, as if the launcher had received it.
pub fn request_stop(sig: i32) {
    PENDING.store(sig, Ordering::SeqCst);
}

/// Installs the forwarding handlers and restores the previous ones when dropped.
struct SignalGuard(Vec<(libc::c_int, libc::sighandler_t)>);

impl SignalGuard {
    fn install() -> SignalGuard {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        SignalGuard(
            [libc::SIGINT, libc::SIGTERM, libc::SIGHUP]
                .into_iter()
                // SAFETY: installs a handler that only stores to an atomic.
                .map(|sig| (sig, unsafe { libc::signal(sig, handler) }))
                .collect(),
        )
    }
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        for &(sig, old) in &self.0 {
            // SAFETY: puts back the handler that was there before `install`.
            unsafe { libc::signal(sig, old) };
        }
    }
}

/// Sends `sig` to a rank's whole process group (its children die with it). A stopped rank
/// cannot act on SIGTERM until continued, so it is killed at once.
fn signal_rank(child: &Child, sig: i32) {
    let sig = if sig == libc::SIGTERM && is_stopped(child.id()) {
        libc::SIGKILL
    } else {
        sig
    };
    // SAFETY: kill(2) on a process group this launcher created (the child leads it).
    unsafe { libc::kill(-(child.id() as libc::pid_t), sig) };
}

/// Whether process `pid` is stopped (SIGSTOP, SIGTSTP, a debugger), from /proc/PID/stat.
fn is_stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            after
                .split_whitespace()
                .next()
                .map(|st| st == "T" || st == "t")
        })
        .unwrap_or(false)
}

/// In the child before exec: ask the kernel for SIGTERM when the launcher dies, and exit at
/// once if it already has (it died between fork and here).
fn die_with_parent(launcher: libc::pid_t) -> std::io::Result<()> {
    // SAFETY: prctl and getppid are async-signal-safe; nothing else runs in the child yet.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::getppid() != launcher {
            libc::_exit(128 + libc::SIGTERM);
        }
    }
    Ok(())
}

/// Copies `from` to `sink` line by line, each prefixed with `[rank K] `.
fn forward_lines(
    rank: usize,
    from: impl Read + Send + 'static,
    sink: Sink,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut r = BufReader::new(from);
        let mut line = Vec::new();
        loop {
            line.clear();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if !line.ends_with(b"\n") {
                        line.push(b'\n');
                    }
                    let mut s = sink.lock().unwrap_or_else(|e| e.into_inner());
                    let _ = write!(s, "[rank {rank}] ").and_then(|()| s.write_all(&line));
                    let _ = s.flush();
                }
            }
        }
    })
}

/// Exit code for a status: its code, or 128 + the signal that ended it.
fn code_of(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// Starts the ranks, waits for them, and returns the launcher's exit code: 0 when every rank
/// succeeded, else the code of the first rank that failed (or 128 + a forwarded signal).
pub fn run(spec: &LaunchSpec, out: Sink, err: Sink) -> Result<i32> {
    spec.validate()?;
    let world = spec.nproc_per_node * spec.nnodes;
    let note = |msg: String| {
        let mut e = err.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(e, "[launch] {msg}");
    };
    let _signals = SignalGuard::install();
    PENDING.store(0, Ordering::SeqCst);
    let mut children: Vec<(usize, Child)> = Vec::new();
    let mut readers = Vec::new();
    // SAFETY: getpid has no preconditions.
    let launcher = unsafe { libc::getpid() };
    for local in 0..spec.nproc_per_node {
        let rank = spec.node_rank * spec.nproc_per_node + local;
        let mut command = Command::new(&spec.program);
        // SAFETY: the hook only calls async-signal-safe functions (see die_with_parent).
        unsafe {
            command.pre_exec(move || die_with_parent(launcher));
        }
        let spawned = command
            .args(&spec.args)
            .env("PALISADE_RANK", rank.to_string())
            .env("PALISADE_WORLD_SIZE", world.to_string())
            .env("PALISADE_LOCAL_RANK", local.to_string())
            .env("PALISADE_LOCAL_WORLD_SIZE", spec.nproc_per_node.to_string())
            .env(MASTER_ENV, &spec.master)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Own process group: terminal Ctrl-C reaches the launcher only, which forwards it.
            .process_group(0)
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                for (_, c) in &children {
                    signal_rank(c, libc::SIGKILL);
                }
                return Err(ShardingError::Init {
                    backend: "launch",
                    msg: format!("cannot start rank {rank} ({}): {e}", spec.program.display()),
                });
            }
        };
        if let Some(o) = child.stdout.take() {
            readers.push(forward_lines(rank, o, out.clone()));
        }
        if let Some(e) = child.stderr.take() {
            readers.push(forward_lines(rank, e, err.clone()));
        }
        children.push((rank, child));
    }

    let mut live: Vec<bool> = vec![true; children.len()];
    let mut result: Option<i32> = None;
    // The code of a forwarded signal, reported unless a rank exits with a code of its own
    // (a preempted rank's "checkpoint written" code, say).
    let mut forwarded: Option<i32> = None;
    let mut stop_deadline: Option<Instant> = None;
    let mut stopping = false; // the ranks are to be sent SIGTERM now
    while live.iter().any(|&l| l) {
        let got = PENDING.swap(0, Ordering::SeqCst);
        // A closed terminal means "stop", as SIGTERM does.
        let sig = if got == libc::SIGHUP {
            libc::SIGTERM
        } else {
            got
        };
        if sig != 0 {
            note(format!("forwarding signal {sig} to every rank"));
            for (i, (_, c)) in children.iter().enumerate() {
                if live[i] {
                    signal_rank(c, sig);
                }
            }
            forwarded.get_or_insert(128 + sig);
            stop_deadline.get_or_insert(Instant::now() + spec.grace);
        }
        for (i, (rank, c)) in children.iter_mut().enumerate() {
            if !live[i] {
                continue;
            }
            let Ok(Some(status)) = c.try_wait() else {
                continue;
            };
            live[i] = false;
            if status.success() || result.is_some() {
                continue;
            }
            let code = code_of(status);
            result = Some(code);
            if forwarded.is_some() {
                continue;
            }
            note(format!(
                "rank {rank} exited with {status}; stopping the other ranks"
            ));
            stop_deadline = Some(Instant::now() + spec.grace);
            stopping = true;
        }
        // SIGTERM once (a rank may be writing its checkpoint), SIGKILL after the grace period.
        if std::mem::take(&mut stopping) {
            for (i, (_, c)) in children.iter().enumerate() {
                if live[i] {
                    signal_rank(c, libc::SIGTERM);
                }
            }
        }
        if stop_deadline.is_some_and(|d| Instant::now() >= d) {
            for (i, (_, c)) in children.iter().enumerate() {
                if live[i] {
                    signal_rank(c, libc::SIGKILL);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for r in readers {
        let _ = r.join();
    }
    Ok(result.or(forwarded).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Launcher tests share the signal state; run them one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    /// Runs `script` on ranks `n..2n` of `2n`; `stop_after`: simulate a SIGTERM then.
    fn sh(script: &str, n: usize, stop_after: Option<Duration>) -> (i32, String, String) {
        let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let stopper = stop_after.map(|d| {
            std::thread::spawn(move || {
                std::thread::sleep(d);
                request_stop(libc::SIGTERM);
            })
        });
        let out: Arc<Mutex<Vec<u8>>> = Arc::new(Mutex::new(Vec::new()));
        let err: Arc<Mutex<Vec<u8>>> = Arc::new(Mutex::new(Vec::new()));
        let spec = LaunchSpec {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            nproc_per_node: n,
            nnodes: 2,
            node_rank: 1,
            master: "127.0.0.1:1".into(),
            grace: Duration::from_secs(5),
            env: vec![],
        };
        let code = run(&spec, out.clone(), err.clone()).unwrap();
        if let Some(s) = stopper {
            s.join().unwrap();
        }
        let text = |b: &Arc<Mutex<Vec<u8>>>| String::from_utf8(b.lock().unwrap().clone()).unwrap();
        (code, text(&out), text(&err))
    }

    #[test]
    fn prefixes_lines_and_sets_rank_variables() {
        let (code, out, err) = sh(
            "echo \"r=$PALISADE_RANK w=$PALISADE_WORLD_SIZE l=$PALISADE_LOCAL_RANK m=$PALISADE_MASTER\"; \
             printf 'no newline'; echo oops >&2",
            2,
            None,
        );
        assert_eq!(code, 0, "{out}{err}");
        // Node 1 of 2 with two ranks per node holds ranks 2 and 3.
        assert!(
            out.contains("[rank 2] r=2 w=4 l=0 m=127.0.0.1:1\n"),
            "{out}"
        );
        assert!(
            out.contains("[rank 3] r=3 w=4 l=1 m=127.0.0.1:1\n"),
            "{out}"
        );
        assert!(out.contains("[rank 3] no newline\n"), "{out}");
        assert!(err.contains("[rank 2] oops\n"), "{err}");
    }

    #[test]
    fn a_failing_rank_stops_the_others_and_sets_the_exit_code() {
        // Rank 3 fails at once; rank 2 would sleep for minutes unless stopped.
        let (code, out, err) = sh(
            "if [ $PALISADE_RANK = 3 ]; then echo failing; exit 7; fi; echo waiting; exec sleep 300",
            2,
            None,
        );
        assert_eq!(code, 7, "{out}{err}");
        assert!(
            err.contains("[launch] rank 3 exited with exit status: 7"),
            "{err}"
        );
        assert!(out.contains("[rank 3] failing"), "{out}");
    }

    #[test]
    fn forwards_a_stop_signal_to_every_rank() {
        // The shells trap TERM well before the stop arrives; until then they just wait.
        let (code, out, err) = sh(
            "trap 'echo got TERM; exit 0' TERM; echo ready; sleep 300 & wait",
            2,
            Some(Duration::from_millis(500)),
        );
        assert_eq!(code, 128 + libc::SIGTERM, "{out}{err}");
        assert!(
            out.contains("[rank 2] got TERM") && out.contains("[rank 3] got TERM"),
            "{out}{err}"
        );
        assert!(err.contains("forwarding signal 15"), "{err}");
    }

    #[test]
    fn a_stopped_rank_is_killed_at_once_not_after_the_grace_period() {
        let start = Instant::now();
        // Rank 2 stops itself; rank 3 stops cleanly on TERM. The grace period is 5 s.
        let (code, out, err) = sh(
            "if [ $PALISADE_RANK = 2 ]; then kill -STOP $$; fi; \
             trap 'exit 0' TERM; sleep 300 & wait",
            2,
            Some(Duration::from_millis(500)),
        );
        assert!(start.elapsed() < Duration::from_secs(4), "{out}{err}");
        assert_eq!(code, 128 + libc::SIGKILL, "{out}{err}");
    }

    #[test]
    fn refuses_bad_numbers() {
        let mut spec = LaunchSpec {
            program: "/bin/true".into(),
            args: vec![],
            nproc_per_node: 1,
            nnodes: 2,
            node_rank: 2,
            master: "127.0.0.1:1".into(),
            grace: Duration::from_secs(1),
            env: vec![],
        };
        assert!(spec
            .validate()
            .unwrap_err()
            .to_string()
            .contains("--node-rank 2"));
        spec.node_rank = 0;
        spec.master = "localhost".into();
        assert!(spec
            .validate()
            .unwrap_err()
            .to_string()
            .contains("HOST:PORT"));
    }
}
