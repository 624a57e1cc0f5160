//! The MPI process group: collectives through the MPI library (OpenMPI, MPICH) over host memory.
//!
//! MPI is initialised once per process, at `MPI_THREAD_MULTIPLE` so the watchdog thread may
//! abort the job while the main thread is blocked inside a call, and finalised when the last
//! group using it is dropped. MPI's own errors are fatal (its default handler aborts the job
//! with MPI's message); hangs are ended by the watchdog ([`crate::watchdog`]).

use crate::error::{Result, ShardingError};
use crate::group::{ProcessGroup, ReduceOp};
use crate::tensor_buf::{as_mut_slice, as_slice, check, empty_host, host, with_elem};
use crate::watchdog::{Watchdog, TIMEOUT_ENV};
use mpi::collective::{CommunicatorCollectives, Root, SystemOperation};
use mpi::datatype::Equivalence;
use mpi::environment::Universe;
use mpi::point_to_point::{Destination, Source};
use mpi::topology::{Color, Communicator, SimpleCommunicator};
use mpi::Threading;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tch::{Kind, Tensor};

/// Exit code of a job aborted by the collective watchdog.
pub const EXIT_TIMEOUT: i32 = 124;
/// Exit code of a job aborted because one rank failed.
pub const EXIT_RANK_FAILED: i32 = 1;

/// The MPI library's lifetime in this process.
struct Runtime {
    // Field order is drop order: the watchdog thread stops before MPI is finalised.
    watchdog: Watchdog,
    world_rank: usize,
    world_size: usize,
    _universe: Universe,
}

/// The live runtime, if any; groups hold the strong references.
static RUNTIME: Mutex<Weak<Runtime>> = Mutex::new(Weak::new());

/// The process's MPI runtime, initialising MPI on first use.
fn runtime(timeout: Option<Duration>) -> Result<Arc<Runtime>> {
    let mut slot = RUNTIME.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(rt) = slot.upgrade() {
        return Ok(rt);
    }
    let init_err = |msg: String| ShardingError::Init {
        backend: "mpi",
        msg,
    };
    if mpi::environment::is_finalized() {
        return Err(init_err(
            "MPI was already finalised in this process and cannot start again; keep one process \
             group alive for the whole run"
                .into(),
        ));
    }
    let (universe, level) =
        mpi::initialize_with_threading(Threading::Multiple).ok_or_else(|| {
            init_err("MPI was initialised in this process by someone other than palisade".into())
        })?;
    if level < Threading::Serialized {
        return Err(init_err(format!(
            "the MPI library offers thread level {level:?}; palisade needs at least Serialized"
        )));
    }
    let world = universe.world();
    let (world_rank, world_size) = (world.rank() as usize, world.size() as usize);
    let multiple = level == Threading::Multiple;
    let watchdog = Watchdog::new(
        timeout,
        Box::new(move |op, waited| {
            eprintln!(
                "palisade: rank {world_rank} of {world_size}: collective {op} has waited {:.0} s, \
                 past the {TIMEOUT_ENV} limit; another rank has stopped, crashed or is calling a \
                 different collective. Aborting the job.",
                waited.as_secs_f64()
            );
            if multiple {
                SimpleCommunicator::world().abort(EXIT_TIMEOUT)
            }
            // Without MPI_THREAD_MULTIPLE this thread may not call MPI; dying by signal still
            // makes the launcher stop the other ranks.
            std::process::abort()
        }),
    );
    let rt = Arc::new(Runtime {
        watchdog,
        world_rank,
        world_size,
        _universe: universe,
    });
    *slot = Arc::downgrade(&rt);
    Ok(rt)
}

/// A communicator handle that may move between threads.
struct Comm(SimpleCommunicator);

// SAFETY: MPI runs at MPI_THREAD_MULTIPLE or SERIALIZED (checked in `runtime`), so a handle may
// be used from any thread as long as calls on it do not overlap; `MpiGroup` serialises them
// through its mutex.
unsafe impl Send for Comm {}

/// A group of ranks talking through MPI.
pub struct MpiGroup {
    // Field order is drop order: the communicator is freed before MPI may be finalised.
    comm: Mutex<Comm>,
    rank: usize,
    size: usize,
    runtime: Arc<Runtime>,
}

impl MpiGroup {
    /// Every rank of the job (a duplicate of `MPI_COMM_WORLD`, so palisade's messages never mix
    /// with another library's). Initialises MPI on first use; `timeout` applies to the whole
    /// process and is fixed by the first call.
    pub fn world(timeout: Option<Duration>) -> Result<MpiGroup> {
        let runtime = runtime(timeout)?;
        let comm = {
            let _w = runtime.watchdog.watch("init");
            SimpleCommunicator::world().duplicate()
        };
        Ok(MpiGroup::wrap(comm, runtime))
    }

    fn wrap(comm: SimpleCommunicator, runtime: Arc<Runtime>) -> MpiGroup {
        MpiGroup {
            rank: comm.rank() as usize,
            size: comm.size() as usize,
            comm: Mutex::new(Comm(comm)),
            runtime,
        }
    }

    /// The collective timeout in force.
    pub fn timeout(&self) -> Option<Duration> {
        self.runtime.watchdog.timeout()
    }

    fn comm(&self) -> MutexGuard<'_, Comm> {
        self.comm.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn peer(&self, op: &'static str, peer: usize) -> Result<i32> {
        if peer >= self.size {
            return Err(ShardingError::Collective {
                op,
                msg: format!(
                    "rank {} named rank {peer}, outside the group of {}",
                    self.rank, self.size
                ),
            });
        }
        Ok(peer as i32)
    }

    fn unsupported(&self, op: &'static str, kind: Kind) -> ShardingError {
        ShardingError::BadTensor {
            op,
            rank: self.rank,
            msg: format!("tensor kind {kind:?} cannot travel"),
        }
    }

    fn check_avg(&self, op: &'static str, t: &Tensor, how: ReduceOp) -> Result<()> {
        if how == ReduceOp::Avg && !t.is_floating_point() {
            return Err(ShardingError::BadTensor {
                op,
                rank: self.rank,
                msg: format!("cannot average a {:?} tensor", t.kind()),
            });
        }
        Ok(())
    }

    /// Divides by the group size for [`ReduceOp::Avg`].
    fn finish(&self, t: Tensor, how: ReduceOp) -> Tensor {
        match how {
            ReduceOp::Sum => t,
            ReduceOp::Avg => t / self.size as f64,
        }
    }
}

/// Writes `src` into `dst` without recording an autograd operation (parameters are leaves).
fn write_into(dst: &mut Tensor, src: &Tensor) {
    tch::no_grad(|| {
        dst.copy_(src);
    });
}

/// Whether `staged` is `t`'s own storage (no copy back needed).
fn same_memory(t: &Tensor, staged: &Tensor) -> bool {
    t.device() == tch::Device::Cpu && t.is_contiguous() && t.data_ptr() == staged.data_ptr()
}

impl ProcessGroup for MpiGroup {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.size
    }

    fn all_reduce(&self, t: &mut Tensor, op: ReduceOp) -> Result<()> {
        const OP: &str = "all_reduce";
        check(OP, self.rank, t)?;
        self.check_avg(OP, t, op)?;
        let src = host(t);
        let mut dst = empty_host(&t.size(), t.kind());
        {
            let _w = self.runtime.watchdog.watch(OP);
            let comm = self.comm();
            with_elem!(t.kind(), T => comm.0.all_reduce_into(
                as_slice::<T>(&src),
                as_mut_slice::<T>(&mut dst),
                SystemOperation::sum(),
            ), else return Err(self.unsupported(OP, t.kind())));
        }
        write_into(t, &self.finish(dst, op));
        Ok(())
    }

    fn all_gather(&self, t: &Tensor) -> Result<Tensor> {
        const OP: &str = "all_gather";
        check(OP, self.rank, t)?;
        let mut shape = t.size();
        match shape.first_mut() {
            Some(d0) => *d0 *= self.size as i64,
            None => shape.push(self.size as i64),
        }
        let src = host(t);
        let mut dst = empty_host(&shape, t.kind());
        {
            let _w = self.runtime.watchdog.watch(OP);
            let comm = self.comm();
            with_elem!(t.kind(), T => comm.0.all_gather_into(
                as_slice::<T>(&src),
                as_mut_slice::<T>(&mut dst),
            ), else return Err(self.unsupported(OP, t.kind())));
        }
        Ok(dst.to_device(t.device()))
    }

    fn broadcast(&self, t: &mut Tensor, root: usize) -> Result<()> {
        const OP: &str = "broadcast";
        check(OP, self.rank, t)?;
        let root = self.peer(OP, root)?;
        let mut buf = host(t);
        {
            let _w = self.runtime.watchdog.watch(OP);
            let comm = self.comm();
            let root = comm.0.process_at_rank(root);
            with_elem!(t.kind(), T => root.broadcast_into(as_mut_slice::<T>(&mut buf)),
                else return Err(self.unsupported(OP, t.kind())));
        }
        if !same_memory(t, &buf) {
            write_into(t, &buf);
        }
        Ok(())
    }

    fn reduce_scatter(&self, t: &Tensor, op: ReduceOp) -> Result<Tensor> {
        const OP: &str = "reduce_scatter";
        check(OP, self.rank, t)?;
        self.check_avg(OP, t, op)?;
        let mut shape = t.size();
        let rows = shape.first().copied().unwrap_or(0);
        if shape.is_empty() || rows % self.size as i64 != 0 {
            return Err(ShardingError::BadTensor {
                op: OP,
                rank: self.rank,
                msg: format!(
                    "shape {shape:?}: dim 0 must divide evenly among {} ranks",
                    self.size
                ),
            });
        }
        shape[0] = rows / self.size as i64;
        let src = host(t);
        let mut dst = empty_host(&shape, t.kind());
        {
            let _w = self.runtime.watchdog.watch(OP);
            let comm = self.comm();
            with_elem!(t.kind(), T => comm.0.reduce_scatter_block_into(
                as_slice::<T>(&src),
                as_mut_slice::<T>(&mut dst),
                SystemOperation::sum(),
            ), else return Err(self.unsupported(OP, t.kind())));
        }
        Ok(self.finish(dst, op).to_device(t.device()))
    }

    fn send(&self, t: &Tensor, dest: usize) -> Result<()> {
        const OP: &str = "send";
        check(OP, self.rank, t)?;
        if dest == self.rank {
            return Err(ShardingError::Collective {
                op: OP,
                msg: format!("rank {dest} cannot send to itself with a blocking send"),
            });
        }
        let dest = self.peer(OP, dest)?;
        let src = host(t);
        let _w = self.runtime.watchdog.watch(OP);
        let comm = self.comm();
        let to = comm.0.process_at_rank(dest);
        with_elem!(t.kind(), T => to.send(as_slice::<T>(&src)),
            else return Err(self.unsupported(OP, t.kind())));
        Ok(())
    }

    fn recv(&self, t: &mut Tensor, src: usize) -> Result<()> {
        const OP: &str = "recv";
        check(OP, self.rank, t)?;
        let from_rank = src;
        let src = self.peer(OP, src)?;
        let mut buf = host(t);
        let count = {
            let _w = self.runtime.watchdog.watch(OP);
            let comm = self.comm();
            let from = comm.0.process_at_rank(src);
            with_elem!(t.kind(), T => from
                .receive_into(as_mut_slice::<T>(&mut buf))
                .count(T::equivalent_datatype()),
                else return Err(self.unsupported(OP, t.kind())))
        };
        if count as usize != t.numel() {
            return Err(ShardingError::Collective {
                op: OP,
                msg: format!(
                    "rank {} expected {} elements from rank {from_rank}, got {count}",
                    self.rank,
                    t.numel()
                ),
            });
        }
        if !same_memory(t, &buf) {
            write_into(t, &buf);
        }
        Ok(())
    }

    fn send_recv(&self, send: &Tensor, dest: usize, recv: &mut Tensor, src: usize) -> Result<()> {
        const OP: &str = "send_recv";
        check(OP, self.rank, send)?;
        check(OP, self.rank, recv)?;
        if send.kind() != recv.kind() {
            return Err(ShardingError::BadTensor {
                op: OP,
                rank: self.rank,
                msg: format!(
                    "sends {:?} but receives {:?}; use one kind",
                    send.kind(),
                    recv.kind()
                ),
            });
        }
        let (from_rank, dest, src) = (src, self.peer(OP, dest)?, self.peer(OP, src)?);
        let out = host(send);
        let mut buf = host(recv);
        let count = {
            let _w = self.runtime.watchdog.watch(OP);
            let comm = self.comm();
            let (to, from) = (comm.0.process_at_rank(dest), comm.0.process_at_rank(src));
            with_elem!(send.kind(), T => mpi::point_to_point::send_receive_into(
                as_slice::<T>(&out),
                &to,
                as_mut_slice::<T>(&mut buf),
                &from,
            ).count(T::equivalent_datatype()),
            else return Err(self.unsupported(OP, send.kind())))
        };
        if count as usize != recv.numel() {
            return Err(ShardingError::Collective {
                op: OP,
                msg: format!(
                    "rank {} expected {} elements from rank {from_rank}, got {count}",
                    self.rank,
                    recv.numel()
                ),
            });
        }
        if !same_memory(recv, &buf) {
            write_into(recv, &buf);
        }
        Ok(())
    }

    fn barrier(&self) -> Result<()> {
        let _w = self.runtime.watchdog.watch("barrier");
        self.comm().0.barrier();
        Ok(())
    }

    fn split(&self, color: usize, key: usize) -> Result<Box<dyn ProcessGroup>> {
        const OP: &str = "split";
        let (Ok(color), Ok(key)) = (i32::try_from(color), i32::try_from(key)) else {
            return Err(ShardingError::Collective {
                op: OP,
                msg: format!("color {color} or key {key} exceeds MPI's int range"),
            });
        };
        let sub = {
            let _w = self.runtime.watchdog.watch(OP);
            self.comm()
                .0
                .split_by_color_with_key(Color::with_value(color), key)
        };
        let sub = sub.ok_or_else(|| ShardingError::Collective {
            op: OP,
            msg: format!("rank {} got no sub-group for color {color}", self.rank),
        })?;
        Ok(Box::new(MpiGroup::wrap(sub, self.runtime.clone())))
    }

    fn abort(&self, reason: &str) {
        let rt = &self.runtime;
        if rt.world_size <= 1 {
            return;
        }
        eprintln!(
            "palisade: rank {} of {} failed: {reason}\npalisade: stopping every rank of the job",
            rt.world_rank, rt.world_size
        );
        SimpleCommunicator::world().abort(EXIT_RANK_FAILED)
    }

    fn backend(&self) -> &'static str {
        "mpi"
    }
}
