//! Choosing and starting a process group from the launcher's environment.

use crate::error::{Result, ShardingError};
use crate::group::{ProcessGroup, SingleProcess};
use crate::mpi_group::MpiGroup;
use crate::rank::{discover_from, RankInfo};
use crate::tcp_group::{TcpGroup, MASTER_ENV};
use crate::watchdog;
use std::str::FromStr;
use std::time::Duration;

/// Environment variable naming the backend (`auto`, `single`, `mpi`, `tcp`, `nccl`).
pub const BACKEND_ENV: &str = "PALISADE_BACKEND";

/// Which process group to start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Backend {
    /// One process when the launcher says world size 1 (or nothing); TCP for ranks started by
    /// `palisade launch`; MPI otherwise (mpirun, srun).
    #[default]
    Auto,
    /// One process; refused when the launcher started several.
    Single,
    /// MPI over host memory (needs an MPI launcher: `mpirun`, `srun --mpi=pmix`).
    Mpi,
    /// TCP over host memory, meeting at `PALISADE_MASTER` (what `palisade launch` sets).
    Tcp,
    /// NCCL for CUDA tensors, bootstrapped over MPI.
    Nccl,
}

impl FromStr for Backend {
    type Err = ShardingError;
    fn from_str(s: &str) -> Result<Backend> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(Backend::Auto),
            "single" => Ok(Backend::Single),
            "mpi" => Ok(Backend::Mpi),
            "tcp" => Ok(Backend::Tcp),
            "nccl" => Ok(Backend::Nccl),
            _ => Err(ShardingError::BadEnv {
                var: BACKEND_ENV.into(),
                value: s.into(),
                what: "backend (auto, single, mpi, tcp or nccl)",
            }),
        }
    }
}

/// Everything [`init_with`] needs.
#[derive(Debug, Clone, PartialEq)]
pub struct InitOptions {
    /// Which backend.
    pub backend: Backend,
    /// How long a rank may wait in one collective before the job is aborted (`None`: forever).
    pub timeout: Option<Duration>,
    /// Where this process sits, as the launcher says.
    pub rank_info: RankInfo,
    /// Rendezvous address for the TCP backend (`PALISADE_MASTER`).
    pub master: Option<String>,
}

impl InitOptions {
    /// Options for `backend`, with the timeout and rank information read through `get`.
    pub fn from_env_with(
        backend: Backend,
        get: impl Fn(&str) -> Option<String> + Copy,
    ) -> Result<InitOptions> {
        Ok(InitOptions {
            backend,
            timeout: watchdog::timeout_from(get)?,
            rank_info: discover_from(get)?,
            master: get(MASTER_ENV).filter(|m| !m.trim().is_empty()),
        })
    }
}

/// Reads [`BACKEND_ENV`] (unset: [`Backend::Auto`]).
pub fn backend_from_env() -> Result<Backend> {
    std::env::var(BACKEND_ENV)
        .ok()
        .map_or(Ok(Backend::Auto), |v| v.parse())
}

/// Starts the process group `backend` names, with the timeout from
/// `PALISADE_COLLECTIVE_TIMEOUT_S` and the ranks from the launcher's variables.
pub fn init(backend: Backend) -> Result<Box<dyn ProcessGroup>> {
    init_with(&InitOptions::from_env_with(backend, |k| {
        std::env::var(k).ok()
    })?)
}

/// Which backend actually runs for `opts`; `None` means a single process.
pub fn resolve(opts: &InitOptions) -> Result<Option<Backend>> {
    let info = &opts.rank_info;
    match (opts.backend, info.world_size) {
        (Backend::Auto | Backend::Single, 1) => Ok(None),
        (Backend::Single, w) => Err(ShardingError::Init {
            backend: "single",
            msg: format!(
                "{BACKEND_ENV}=single, but the launcher ({} variables) started rank {} of {w}; \
                 each rank would train alone",
                info.source, info.rank
            ),
        }),
        // palisade's launcher starts plain processes, which MPI cannot join: they meet over TCP.
        (Backend::Auto, _) if info.source == "palisade" && opts.master.is_some() => {
            Ok(Some(Backend::Tcp))
        }
        (Backend::Auto, _) => Ok(Some(Backend::Mpi)),
        (b, _) => Ok(Some(b)),
    }
}

/// Starts the process group `opts` describes; see [`resolve`].
pub fn init_with(opts: &InitOptions) -> Result<Box<dyn ProcessGroup>> {
    match resolve(opts)? {
        None => Ok(Box::new(SingleProcess)),
        Some(Backend::Nccl) => {
            crate::nccl::check_cuda()?;
            // NCCL's unique id travels over a bootstrap group: TCP under `palisade launch`
            // (whose plain processes MPI cannot join), MPI otherwise.
            let info = &opts.rank_info;
            let bootstrap: Box<dyn ProcessGroup> = match opts.master.as_deref() {
                Some(m) if info.source == "palisade" => Box::new(TcpGroup::connect(
                    info.rank,
                    info.world_size,
                    m,
                    opts.timeout,
                )?),
                _ => Box::new(MpiGroup::world(opts.timeout)?),
            };
            check_world(
                info,
                bootstrap.backend(),
                bootstrap.rank(),
                bootstrap.world_size(),
            )?;
            crate::nccl::start(bootstrap, info.local_rank)
        }
        Some(Backend::Tcp) => {
            let info = &opts.rank_info;
            let master = opts.master.as_deref().ok_or_else(|| ShardingError::Init {
                backend: "tcp",
                msg: format!("{MASTER_ENV} (HOST:PORT where rank 0 listens) is not set"),
            })?;
            let g = TcpGroup::connect(info.rank, info.world_size, master, opts.timeout)?;
            Ok(Box::new(g))
        }
        Some(_) => {
            let g = MpiGroup::world(opts.timeout)?;
            check_world(&opts.rank_info, "MPI", g.rank(), g.world_size())?;
            Ok(Box::new(g))
        }
    }
}

/// Errors unless the launcher's view of this rank matches the backend's.
pub fn check_world(
    info: &RankInfo,
    backend: &'static str,
    rank: usize,
    world: usize,
) -> Result<()> {
    if (info.rank, info.world_size) == (rank, world) {
        return Ok(());
    }
    Err(ShardingError::WorldMismatch {
        source_vars: info.source,
        env_rank: info.rank,
        env_world: info.world_size,
        backend,
        backend_rank: rank,
        backend_world: world,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(backend: Backend, world: usize) -> InitOptions {
        InitOptions {
            backend,
            timeout: None,
            rank_info: RankInfo {
                rank: 0,
                world_size: world,
                local_rank: 0,
                local_world: 1,
                source: "palisade",
            },
            master: None,
        }
    }

    #[test]
    fn one_rank_runs_single_process_and_many_run_mpi() {
        assert_eq!(resolve(&opts(Backend::Auto, 1)).unwrap(), None);
        assert_eq!(
            resolve(&opts(Backend::Auto, 2)).unwrap(),
            Some(Backend::Mpi)
        );
        assert_eq!(resolve(&opts(Backend::Mpi, 1)).unwrap(), Some(Backend::Mpi));
        let mut launched = opts(Backend::Auto, 2);
        launched.master = Some("127.0.0.1:29500".into());
        assert_eq!(resolve(&launched).unwrap(), Some(Backend::Tcp));
        let err = resolve(&opts(Backend::Single, 4)).unwrap_err().to_string();
        assert!(
            err.contains("rank 0 of 4") && err.contains("palisade"),
            "{err}"
        );
        let g = init_with(&opts(Backend::Auto, 1)).unwrap();
        assert_eq!((g.backend(), g.world_size()), ("single", 1));
    }

    #[test]
    fn parses_backend_names() {
        assert_eq!("MPI".parse::<Backend>().unwrap(), Backend::Mpi);
        assert_eq!("".parse::<Backend>().unwrap(), Backend::Auto);
        let err = "gloo".parse::<Backend>().unwrap_err().to_string();
        assert!(err.contains(BACKEND_ENV) && err.contains("gloo"), "{err}");
    }

    #[test]
    fn mismatched_worlds_name_both_views() {
        let info = opts(Backend::Mpi, 4).rank_info;
        assert!(check_world(&info, "MPI", 0, 4).is_ok());
        let err = check_world(&info, "MPI", 1, 2).unwrap_err().to_string();
        assert!(
            err.contains("rank 0 of 4") && err.contains("MPI says rank 1 of 2"),
            "{err}"
        );
    }
}
