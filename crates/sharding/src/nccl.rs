//! The NCCL process group for CUDA tensors (a first cut: not yet run on GPUs in CI).
//!
//! NCCL needs every rank to hold the same `ncclUniqueId`, created by rank 0; it travels over a
//! bootstrap group (MPI under mpirun/srun, TCP under `palisade launch`), which also serves
//! [`ProcessGroup::split`] (a new NCCL communicator per sub-group) and `abort`. Collectives run
//! on CUDA's legacy default stream, the one libtorch uses unless told otherwise, so they are
//! ordered with the surrounding libtorch work without extra synchronisation. CPU tensors (config
//! hashes, data cursors, scalars) go through the bootstrap group. The collective watchdog covers
//! the bootstrap only: NCCL calls return once queued.

use crate::error::{Result, ShardingError};
use crate::group::{ProcessGroup, ReduceOp};
use crate::nccl_lib::{Comm, NcclLib, UniqueId};
use std::ffi::c_void;
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// Whether libtorch sees a CUDA device, which NCCL needs.
pub fn check_cuda() -> Result<()> {
    if crate::libtorch::load_cuda().is_ok() && tch::Cuda::is_available() {
        return Ok(());
    }
    Err(ShardingError::Init {
        backend: "nccl",
        msg: "NCCL needs a CUDA device and libtorch sees none; use the mpi or tcp backend on CPU"
            .into(),
    })
}

/// Starts an NCCL group on the CUDA device `local_rank`, its unique id shared over `bootstrap`.
pub fn start(bootstrap: Box<dyn ProcessGroup>, local_rank: usize) -> Result<Box<dyn ProcessGroup>> {
    check_cuda()?;
    let lib = Arc::new(NcclLib::load()?);
    set_cuda_device(local_rank)?;
    Ok(Box::new(NcclGroup::new(lib, bootstrap, local_rank)?))
}

/// Makes `device` current for NCCL, through the CUDA runtime libtorch already loaded.
fn set_cuda_device(device: usize) -> Result<()> {
    // SAFETY: looks up cudaSetDevice among the loaded libraries (libtorch_cuda needs libcudart).
    let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"cudaSetDevice".as_ptr()) };
    if f.is_null() {
        return Err(ShardingError::Init {
            backend: "nccl",
            msg: "the CUDA runtime (cudaSetDevice) is not loaded in this process".into(),
        });
    }
    // SAFETY: `cudaError_t cudaSetDevice(int)`.
    let set: unsafe extern "C" fn(i32) -> i32 = unsafe { std::mem::transmute(f) };
    match unsafe { set(device as i32) } {
        0 => Ok(()),
        code => Err(ShardingError::Init {
            backend: "nccl",
            msg: format!("cudaSetDevice({device}) failed with CUDA error {code}"),
        }),
    }
}

/// NCCL's name for a libtorch kind.
fn nccl_type(kind: Kind) -> Option<i32> {
    Some(match kind {
        Kind::Uint8 => 1,
        Kind::Int => 2,
        Kind::Int64 => 4,
        Kind::Half => 6,
        Kind::Float => 7,
        Kind::Double => 8,
        Kind::BFloat16 => 9,
        _ => return None,
    })
}

/// NCCL's reduction for ours (`ncclSum`, `ncclAvg`).
fn nccl_op(op: ReduceOp) -> i32 {
    match op {
        ReduceOp::Sum => 0,
        ReduceOp::Avg => 4,
    }
}

/// A group of ranks, one CUDA device each, talking through NCCL.
pub struct NcclGroup {
    lib: Arc<NcclLib>,
    comm: Comm,
    device: usize,
    bootstrap: Box<dyn ProcessGroup>,
}

// SAFETY: an NCCL communicator may be used from any thread as long as calls on it do not
// overlap; the trainer drives each group from one thread at a time.
unsafe impl Send for NcclGroup {}
unsafe impl Sync for NcclGroup {}

impl NcclGroup {
    /// Creates the communicator over `bootstrap`'s ranks: rank 0's unique id is broadcast.
    pub fn new(
        lib: Arc<NcclLib>,
        bootstrap: Box<dyn ProcessGroup>,
        device: usize,
    ) -> Result<NcclGroup> {
        let mut id = UniqueId { internal: [0; 128] };
        if bootstrap.rank() == 0 {
            // SAFETY: writes one ncclUniqueId.
            lib.check("init", unsafe { (lib.get_unique_id)(&mut id) })?;
        }
        let bytes: Vec<u8> = id.internal.iter().map(|&c| c as u8).collect();
        let mut t = Tensor::from_slice(&bytes);
        bootstrap.broadcast(&mut t, 0)?;
        let got = Vec::<u8>::try_from(&t).map_err(|e| ShardingError::Collective {
            op: "init",
            msg: e.to_string(),
        })?;
        for (dst, src) in id.internal.iter_mut().zip(got) {
            *dst = src as _;
        }
        let mut comm: Comm = std::ptr::null_mut();
        let (size, rank) = (bootstrap.world_size() as i32, bootstrap.rank() as i32);
        // SAFETY: every rank passes the same id, its own rank and the world size.
        lib.check("init", unsafe {
            (lib.comm_init_rank)(&mut comm, size, id, rank)
        })?;
        Ok(NcclGroup {
            lib,
            comm,
            device,
            bootstrap,
        })
    }

    /// Checks `t` is a contiguous CUDA tensor of an NCCL kind; returns its NCCL type.
    fn dtype(&self, op: &'static str, t: &Tensor) -> Result<i32> {
        let bad = |msg: String| ShardingError::BadTensor {
            op,
            rank: self.bootstrap.rank(),
            msg,
        };
        if t.device() != Device::Cuda(self.device) {
            return Err(bad(format!(
                "NCCL needs tensors on cuda:{}, not {:?}",
                self.device,
                t.device()
            )));
        }
        nccl_type(t.kind()).ok_or_else(|| bad(format!("kind {:?} has no NCCL type", t.kind())))
    }

    fn contiguous(t: &Tensor) -> Tensor {
        if t.is_contiguous() {
            t.shallow_clone()
        } else {
            t.contiguous()
        }
    }
}

fn ptr(t: &Tensor) -> *mut c_void {
    t.data_ptr()
}

/// Writes a staged contiguous copy back into a strided original (contiguous ones were shared).
fn copy_back(t: &mut Tensor, staged: &Tensor) {
    if !t.is_contiguous() {
        tch::no_grad(|| t.copy_(staged));
    }
}

impl Drop for NcclGroup {
    fn drop(&mut self) {
        // SAFETY: the communicator was created by comm_init_rank and is destroyed once.
        unsafe { (self.lib.comm_destroy)(self.comm) };
    }
}

impl ProcessGroup for NcclGroup {
    fn rank(&self) -> usize {
        self.bootstrap.rank()
    }

    fn world_size(&self) -> usize {
        self.bootstrap.world_size()
    }

    fn all_reduce(&self, t: &mut Tensor, op: ReduceOp) -> Result<()> {
        if t.device() == Device::Cpu {
            return self.bootstrap.all_reduce(t, op);
        }
        let dt = self.dtype("all_reduce", t)?;
        let buf = NcclGroup::contiguous(t);
        let n = buf.numel();
        // SAFETY: in-place all-reduce over `n` elements of a live CUDA buffer.
        let code = unsafe {
            (self.lib.all_reduce)(
                ptr(&buf),
                ptr(&buf),
                n,
                dt,
                nccl_op(op),
                self.comm,
                std::ptr::null_mut(),
            )
        };
        self.lib.check("all_reduce", code)?;
        copy_back(t, &buf);
        Ok(())
    }

    fn all_gather(&self, t: &Tensor) -> Result<Tensor> {
        if t.device() == Device::Cpu {
            return self.bootstrap.all_gather(t);
        }
        let dt = self.dtype("all_gather", t)?;
        let src = NcclGroup::contiguous(t);
        let mut shape = t.size();
        let w = self.world_size() as i64;
        match shape.first_mut() {
            Some(d0) => *d0 *= w,
            None => shape.push(w),
        }
        let out = Tensor::empty(shape.as_slice(), (t.kind(), t.device()));
        // SAFETY: `out` holds world × numel elements.
        let code = unsafe {
            (self.lib.all_gather)(
                ptr(&src),
                ptr(&out),
                src.numel(),
                dt,
                self.comm,
                std::ptr::null_mut(),
            )
        };
        self.lib.check("all_gather", code)?;
        Ok(out)
    }

    fn broadcast(&self, t: &mut Tensor, root: usize) -> Result<()> {
        if t.device() == Device::Cpu {
            return self.bootstrap.broadcast(t, root);
        }
        let dt = self.dtype("broadcast", t)?;
        let buf = NcclGroup::contiguous(t);
        // SAFETY: in-place broadcast of a live CUDA buffer.
        let code = unsafe {
            (self.lib.broadcast)(
                ptr(&buf),
                ptr(&buf),
                buf.numel(),
                dt,
                root as i32,
                self.comm,
                std::ptr::null_mut(),
            )
        };
        self.lib.check("broadcast", code)?;
        copy_back(t, &buf);
        Ok(())
    }

    fn reduce_scatter(&self, t: &Tensor, op: ReduceOp) -> Result<Tensor> {
        if t.device() == Device::Cpu {
            return self.bootstrap.reduce_scatter(t, op);
        }
        let dt = self.dtype("reduce_scatter", t)?;
        let w = self.world_size() as i64;
        let mut shape = t.size();
        if shape.is_empty() || shape[0] % w != 0 {
            return Err(ShardingError::BadTensor {
                op: "reduce_scatter",
                rank: self.rank(),
                msg: format!("shape {shape:?}: dim 0 must divide evenly among {w} ranks"),
            });
        }
        shape[0] /= w;
        let src = NcclGroup::contiguous(t);
        let out = Tensor::empty(shape.as_slice(), (t.kind(), t.device()));
        // SAFETY: `src` holds world × out.numel() elements.
        let code = unsafe {
            (self.lib.reduce_scatter)(
                ptr(&src),
                ptr(&out),
                out.numel(),
                dt,
                nccl_op(op),
                self.comm,
                std::ptr::null_mut(),
            )
        };
        self.lib.check("reduce_scatter", code)?;
        Ok(out)
    }

    fn send(&self, t: &Tensor, dest: usize) -> Result<()> {
        if t.device() == Device::Cpu {
            return self.bootstrap.send(t, dest);
        }
        let dt = self.dtype("send", t)?;
        let src = NcclGroup::contiguous(t);
        // SAFETY: a live CUDA buffer of numel elements.
        let code = unsafe {
            (self.lib.send)(
                ptr(&src),
                src.numel(),
                dt,
                dest as i32,
                self.comm,
                std::ptr::null_mut(),
            )
        };
        self.lib.check("send", code)
    }

    fn recv(&self, t: &mut Tensor, src: usize) -> Result<()> {
        if t.device() == Device::Cpu {
            return self.bootstrap.recv(t, src);
        }
        let dt = self.dtype("recv", t)?;
        let buf = NcclGroup::contiguous(t);
        // SAFETY: a live CUDA buffer of numel elements.
        let code = unsafe {
            (self.lib.recv)(
                ptr(&buf),
                buf.numel(),
                dt,
                src as i32,
                self.comm,
                std::ptr::null_mut(),
            )
        };
        self.lib.check("recv", code)?;
        copy_back(t, &buf);
        Ok(())
    }

    fn send_recv(&self, send: &Tensor, dest: usize, recv: &mut Tensor, src: usize) -> Result<()> {
        if send.device() == Device::Cpu && recv.device() == Device::Cpu {
            return self.bootstrap.send_recv(send, dest, recv, src);
        }
        let (ds, dr) = (
            self.dtype("send_recv", send)?,
            self.dtype("send_recv", recv)?,
        );
        let out = NcclGroup::contiguous(send);
        let buf = NcclGroup::contiguous(recv);
        let null = std::ptr::null_mut();
        // SAFETY: one NCCL group call holding a send and a receive of live CUDA buffers, so
        // neither waits on the other.
        let code = unsafe {
            let mut c = (self.lib.group_start)();
            if c == 0 {
                c = (self.lib.send)(ptr(&out), out.numel(), ds, dest as i32, self.comm, null);
            }
            if c == 0 {
                c = (self.lib.recv)(ptr(&buf), buf.numel(), dr, src as i32, self.comm, null);
            }
            let end = (self.lib.group_end)();
            if c == 0 {
                end
            } else {
                c
            }
        };
        self.lib.check("send_recv", code)?;
        copy_back(recv, &buf);
        Ok(())
    }

    fn barrier(&self) -> Result<()> {
        let mut t = Tensor::zeros([1], (Kind::Float, Device::Cuda(self.device)));
        self.all_reduce(&mut t, ReduceOp::Sum)?;
        // Reading the value waits for the collective to finish on the device.
        let _ = t.double_value(&[0]);
        Ok(())
    }

    fn split(&self, color: usize, key: usize) -> Result<Box<dyn ProcessGroup>> {
        let sub = self.bootstrap.split(color, key)?;
        Ok(Box::new(NcclGroup::new(
            self.lib.clone(),
            sub,
            self.device,
        )?))
    }

    fn abort(&self, reason: &str) {
        // SAFETY: aborts this rank's communicator so queued collectives stop waiting.
        unsafe { (self.lib.comm_abort)(self.comm) };
        self.bootstrap.abort(reason);
    }

    fn backend(&self) -> &'static str {
        "nccl"
    }

    fn carries(&self, kind: Kind) -> bool {
        nccl_type(kind).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rank::RankInfo;

    #[test]
    fn without_cuda_the_backend_is_refused_clearly() {
        if crate::libtorch::load_cuda().is_ok() && tch::Cuda::is_available() {
            eprintln!("skipped: a CUDA device is present");
            return;
        }
        let opts = crate::init::InitOptions {
            backend: crate::Backend::Nccl,
            timeout: None,
            rank_info: RankInfo::single(),
            master: None,
        };
        let err = crate::init::init_with(&opts)
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("nccl") && err.contains("CUDA"), "{err}");
    }

    #[test]
    fn maps_kinds_and_ops() {
        assert_eq!(nccl_type(Kind::Float), Some(7));
        assert_eq!(nccl_type(Kind::BFloat16), Some(9));
        assert_eq!(nccl_type(Kind::Bool), None);
        assert_eq!((nccl_op(ReduceOp::Sum), nccl_op(ReduceOp::Avg)), (0, 4));
    }
}
