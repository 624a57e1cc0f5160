//! `palisade launch`: start this node's ranks of a multi-process job (see docs/distributed.md).

use anyhow::{bail, Result};
use palisade_sharding::launch::{self, LaunchSpec, Sink};
use std::ffi::OsString;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Arguments of `palisade launch`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Ranks to start on this node.
    #[arg(long, default_value_t = 1)]
    nproc_per_node: usize,
    /// Nodes in the job (run one `palisade launch` per node).
    #[arg(long, default_value_t = 1)]
    nnodes: usize,
    /// This node's index, from 0.
    #[arg(long, default_value_t = 0)]
    node_rank: usize,
    /// HOST:PORT where rank 0 (on node 0) listens; required with several nodes, else a free
    /// local port.
    #[arg(long, value_name = "HOST:PORT")]
    master: Option<String>,
    /// Seconds between SIGTERM and SIGKILL when stopping ranks after a failure or a signal.
    #[arg(long, default_value_t = 10.0)]
    grace_s: f64,
    /// The palisade command every rank runs, after `--` (e.g. `-- train CONFIG`).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

/// Starts the ranks and exits with the first failing rank's code.
pub fn run(a: Args) -> Result<()> {
    let master = match (a.master, a.nnodes) {
        (Some(m), _) => m,
        (None, 1) => launch::local_master()?,
        (None, n) => bail!("--master HOST:PORT is required with --nnodes {n}"),
    };
    if !(a.grace_s.is_finite() && a.grace_s >= 0.0) {
        bail!("--grace-s {} is not a number of seconds", a.grace_s);
    }
    let spec = LaunchSpec {
        program: std::env::current_exe()?,
        args: a.command,
        nproc_per_node: a.nproc_per_node,
        nnodes: a.nnodes,
        node_rank: a.node_rank,
        master,
        grace: Duration::from_secs_f64(a.grace_s),
        env: Vec::new(),
    };
    let out: Sink = Arc::new(Mutex::new(std::io::stdout()));
    let err: Sink = Arc::new(Mutex::new(std::io::stderr()));
    let code = launch::run(&spec, out, err)?;
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}
