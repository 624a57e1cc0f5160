//! Where a rank computes: the libtorch device and its intra-op threads.

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
    if !tch::Cuda::is_available() {
        return Err(TrainerError::Config(format!(
            "key device: {device} was asked for but libtorch sees no CUDA device"
        )));
    }
    Ok(d)
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
