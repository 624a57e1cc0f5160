//! `bench all-reduce`: the time of one float32 all-reduce (a sum) over every rank of the job,
//! at the sizes tensor parallelism sends (a block's activations), as nccl-tests reports it:
//! algorithm bandwidth (bytes / time) and bus bandwidth (× 2(N−1)/N, what each rank's link
//! carries in a ring).

use super::timing;
use crate::error::Result;
use palisade_sharding::{backend_from_env, init, ReduceOp};
use serde::Serialize;
use tch::{Device, Kind, Tensor};

/// The sizes and repetitions of the all-reduce benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct AllReduceShape {
    /// Message sizes in MiB (float32 elements), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0.25,1,4,16,64")]
    pub mib: Vec<f64>,
    /// Timed calls per size.
    #[arg(long, default_value_t = 20)]
    pub iters: usize,
    /// Untimed calls per size first.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// libtorch threads per rank (the TCP group sums with libtorch); 0: the node's cores
    /// divided among its ranks, as training does. More ranks' threads than cores spin-wait
    /// against the peers' sockets (measured: 256 KiB over 2 ranks × 2 threads on 2 cores took
    /// 16-28 ms, a scheduler slice, against 0.3 ms for 64 KiB, below libtorch's parallel grain).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// One measured size.
#[derive(Debug, Clone, Serialize)]
pub struct AllReduceBench {
    /// The process group's backend (`mpi`, `tcp`, `nccl`).
    pub backend: String,
    /// Ranks in the all-reduce.
    pub ranks: usize,
    /// Message bytes.
    pub bytes: u64,
    /// Median milliseconds per call (rank 0's clock; ranks start each call together).
    pub ms_median: f64,
    /// bytes / time, GB/s.
    pub algbw_gbps: f64,
    /// algbw × 2(N−1)/N, GB/s.
    pub busbw_gbps: f64,
}

impl AllReduceBench {
    /// One line for people.
    pub fn summary(&self) -> String {
        format!(
            "{} × {}: {:>9} bytes {:9.3} ms  algbw {:6.2} GB/s  busbw {:6.2} GB/s",
            self.backend, self.ranks, self.bytes, self.ms_median, self.algbw_gbps, self.busbw_gbps
        )
    }
}

/// Times the all-reduce at each size on this job's ranks; every rank returns the results.
pub fn all_reduce(shape: &AllReduceShape) -> Result<Vec<AllReduceBench>> {
    let local = palisade_sharding::discover()?.local_world.max(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    crate::device::set_threads(match shape.threads {
        0 => (cores / local).max(1),
        t => t,
    });
    let group = init(backend_from_env()?)?;
    let n = group.world_size();
    let mut out = Vec::new();
    for &mib in &shape.mib {
        let elements = ((mib * (1 << 20) as f64) / 4.0).round().max(1.0) as i64;
        let mut t = Tensor::ones([elements], (Kind::Float, Device::Cpu));
        group.barrier()?;
        let (ms, _) = timing::median_mean_ms(shape.warmup, shape.iters, || {
            group.all_reduce(&mut t, ReduceOp::Sum)?;
            Ok(())
        })?;
        let bytes = elements as u64 * 4;
        let algbw = bytes as f64 / (ms / 1000.0) / 1e9;
        out.push(AllReduceBench {
            backend: group.backend().into(),
            ranks: n,
            bytes,
            ms_median: ms,
            algbw_gbps: algbw,
            busbw_gbps: algbw * 2.0 * (n as f64 - 1.0) / n as f64,
        });
    }
    Ok(out)
}
