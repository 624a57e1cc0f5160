//! Re-running one test of this binary on several ranks under mpirun.

use palisade_sharding::mpi_harness::{mpirun, WORKER_ENV};
use std::process::Command;

/// Whether this process is a rank started by [`on_ranks`] for the test `name`.
pub fn is_worker(name: &str) -> bool {
    std::env::var(WORKER_ENV).as_deref() == Ok(name)
}

/// Runs the test `name` (its full path in this binary) on `np` ranks with `env` set; asserts
/// mpirun succeeded and returns its combined output.
pub fn on_ranks(name: &str, np: usize, env: &[(&str, &str)]) -> String {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = mpirun(np);
    for (k, v) in env {
        cmd.args(["-x", k]).env(k, v);
    }
    cmd.args(["-x", WORKER_ENV])
        .arg(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(WORKER_ENV, name);
    run(cmd, &format!("{name} on {np} ranks"))
}

/// Runs `cmd`, asserting success; returns stdout and stderr together.
pub fn run(mut cmd: Command, what: &str) -> String {
    let out = cmd
        .output()
        .expect("mpirun runs (scripts/setup.sh installs OpenMPI)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{text}",
        out.status
    );
    text
}

/// Lines `"<tag> rank R: VALUE"` printed by the ranks, as (R, VALUE).
pub fn reported(text: &str, tag: &str) -> Vec<(usize, f64)> {
    let prefix = format!("{tag} rank ");
    text.lines()
        // Anywhere in the line: libtest's own output may share it.
        .filter_map(|l| l.find(prefix.as_str()).map(|i| &l[i + prefix.len()..]))
        .filter_map(|rest| {
            let (r, v) = rest.split_once(':')?;
            let v = v.split_whitespace().next()?;
            Some((r.trim().parse().ok()?, v.parse().ok()?))
        })
        .collect()
}
