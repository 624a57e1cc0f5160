//! Test support: a test binary that re-executes itself on N ranks, under `mpirun -np N` or
//! palisade's own launcher.
//!
//! A `harness = false` test calls [`main`]: run by `cargo test` it is the driver, launching each
//! [`Case`] with `PALISADE_TEST_WORKER=<scenario>` and checking the launcher's exit status and
//! output; run by a launcher it is a worker and calls the scenario function on every rank.
//! Arguments that do not start with `-` filter cases by name, as libtest's do; `--list` lists them.
//! `PALISADE_TEST_SHOW_OUTPUT=1` prints the output of passing cases too.

use crate::launch::{self, LaunchSpec};
use std::process::{Command, ExitCode};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Which launcher starts the ranks (and so which backend they use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `mpirun`: the MPI backend.
    Mpirun,
    /// [`crate::launch::run`], as `palisade launch` does: the TCP backend.
    Launch,
}

/// Variable that turns the test binary into a worker for the named scenario.
pub const WORKER_ENV: &str = "PALISADE_TEST_WORKER";

/// One mpirun invocation and what its combined output must show.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Test name (filters match on it).
    pub name: &'static str,
    /// Ranks.
    pub np: usize,
    /// Launcher.
    pub via: Via,
    /// Scenario passed to the worker.
    pub scenario: &'static str,
    /// Extra environment for every rank.
    pub env: &'static [(&'static str, &'static str)],
    /// Whether mpirun must exit successfully.
    pub succeeds: bool,
    /// Strings the combined stdout and stderr must contain.
    pub output_has: &'static [&'static str],
}

/// `mpirun -np N` with the flags every local multi-rank run uses (`PALISADE_MPIRUN` overrides
/// the program).
pub fn mpirun(np: usize) -> Command {
    let prog = std::env::var("PALISADE_MPIRUN").unwrap_or_else(|_| "mpirun".into());
    let mut cmd = Command::new(prog);
    // Few cores, up to four ranks: allow more ranks than slots and do not pin them to cores.
    cmd.args([
        "-np",
        &np.to_string(),
        "--oversubscribe",
        "--bind-to",
        "none",
    ]);
    cmd
}

/// Driver or worker, as the module docs describe; `worker` gets the scenario name.
pub fn main(cases: &[Case], worker: fn(&str)) -> ExitCode {
    if let Ok(scenario) = std::env::var(WORKER_ENV) {
        // Ranks share few cores; one libtorch thread each avoids oversubscription.
        tch::set_num_threads(1);
        worker(&scenario);
        return ExitCode::SUCCESS;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for c in cases {
            println!("{}: test", c.name);
        }
        return ExitCode::SUCCESS;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let chosen: Vec<&Case> = cases
        .iter()
        .filter(|c| filters.is_empty() || filters.iter().any(|f| c.name.contains(f.as_str())))
        .collect();
    println!("\nrunning {} tests", chosen.len());
    let mut failed = 0;
    for c in &chosen {
        match run_case(c) {
            Ok(()) => println!("test {} ... ok", c.name),
            Err(why) => {
                println!("test {} ... FAILED\n{why}", c.name);
                failed += 1;
            }
        }
    }
    println!(
        "\ntest result: {}. {} passed; {failed} failed\n",
        if failed == 0 { "ok" } else { "FAILED" },
        chosen.len() - failed,
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs the case's ranks; returns (success, combined output).
fn launch_case(c: &Case) -> Result<(bool, String), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    if c.via == Via::Launch {
        let buf: Arc<Mutex<Vec<u8>>> = Arc::new(Mutex::new(Vec::new()));
        let mut env: Vec<_> = c.env.iter().map(|(k, v)| (k.into(), v.into())).collect();
        env.push((WORKER_ENV.into(), c.scenario.into()));
        let spec = LaunchSpec {
            program: exe,
            args: vec![],
            nproc_per_node: c.np,
            nnodes: 1,
            node_rank: 0,
            master: launch::local_master().map_err(|e| e.to_string())?,
            grace: Duration::from_secs(5),
            env,
        };
        let code = launch::run(&spec, buf.clone(), buf.clone()).map_err(|e| e.to_string())?;
        let text =
            String::from_utf8_lossy(&buf.lock().unwrap_or_else(|e| e.into_inner())).to_string();
        return Ok((code == 0, format!("launcher exit code {code}\n{text}")));
    }
    let mut cmd = mpirun(c.np);
    // Locally the environment is inherited; -x also carries it to other nodes.
    for (k, v) in c.env {
        cmd.args(["-x", k]).env(k, v);
    }
    cmd.args(["-x", WORKER_ENV])
        .arg(exe)
        .env(WORKER_ENV, c.scenario);
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run mpirun (install OpenMPI: scripts/setup.sh): {e}"))?;
    let text = format!(
        "mpirun exit status {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

/// Runs one case and checks its exit status and output.
pub fn run_case(c: &Case) -> Result<(), String> {
    let (ok, text) = launch_case(c)?;
    if ok != c.succeeds {
        return Err(format!(
            "expected {}:\n{text}",
            if c.succeeds { "success" } else { "failure" },
        ));
    }
    match c.output_has.iter().find(|want| !text.contains(*want)) {
        Some(want) => Err(format!("output lacks {want:?}:\n{text}")),
        None => {
            if std::env::var_os("PALISADE_TEST_SHOW_OUTPUT").is_some() {
                println!("{text}");
            }
            Ok(())
        }
    }
}
