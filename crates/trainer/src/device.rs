//! Where a rank computes: the libtorch device and its intra-op threads.

use crate::config::ExperimentConfig;
use crate::error::{Result, TrainerError};
use tch::Device;

/// The libtorch device named by `device` (`cpu`, `cuda`, `cuda:N`); `cuda` picks `local_rank`.
pub fn parse_device(device: &str, local_rank: usize) -> Result<Device> {
    let d = match device {
        "cpu" => return Ok(Device::Cpu),
        "cuda" => Device::Cuda(local_rank),
        other => match other.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(n) => Device::Cuda(n),
            None => {
                return Err(TrainerError::Config(format!(
                    "key device: {other:?} is not cpu, cuda or cuda:N"
                )))
            }
        },
    };
    palisade_sharding::libtorch::load_cuda()
        .map_err(|e| TrainerError::Config(format!("key device: {device}: {e}")))?;
    if !tch::Cuda::is_available() {
        return Err(TrainerError::Config(format!(
            "key device: {device} was asked for but libtorch sees no CUDA device"
        )));
    }
    Ok(d)
}

/// The config as this rank runs it: when `local_world` ranks share the node (and the scheduler
/// has not already given each its own CPUs, `SLURM_CPUS_PER_TASK`), `threads` and
/// `data.threads` are the node's and each rank takes its share, at least one. Logged.
pub fn per_rank(cfg: &ExperimentConfig, local_world: usize) -> ExperimentConfig {
    let mut out = cfg.clone();
    let scheduled = std::env::var_os("SLURM_CPUS_PER_TASK").is_some();
    if local_world <= 1 || !cfg.divide_threads || scheduled {
        return out;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let share = |n: usize| (if n == 0 { cores } else { n } / local_world).max(1);
    out.threads = share(cfg.threads);
    out.data.threads = share(cfg.data.threads);
    tracing::info!(
        "{local_world} ranks share this node's {cores} cores: {} compute + {} data threads per \
         rank (threads={}, data.threads={} divided; divide_threads: false keeps them)",
        out.threads,
        out.data.threads,
        cfg.threads,
        cfg.data.threads
    );
    out
}

/// Sets libtorch's intra-op threads (0: every core).
pub fn set_threads(threads: usize) {
    let n = if threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        threads
    };
    tch::set_num_threads(n as i32);
}
