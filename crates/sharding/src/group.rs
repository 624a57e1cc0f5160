//! The process-group abstraction and its single-process implementation.

use crate::error::{Result, ShardingError};
use tch::Tensor;

/// How an all-reduce combines the ranks' tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    /// Element-wise sum.
    Sum,
    /// Element-wise mean over ranks (floating-point tensors only).
    Avg,
}

/// Collectives over libtorch tensors; implementations exist per backend.
///
/// Every rank of the group must call the same collectives in the same order. Tensors may live
/// on any device and have any strides; backends that communicate through host memory copy them.
pub trait ProcessGroup: Send + Sync {
    /// This process's rank in the group.
    fn rank(&self) -> usize;
    /// Number of ranks in the group.
    fn world_size(&self) -> usize;
    /// In-place all-reduce of `t`.
    fn all_reduce(&self, t: &mut Tensor, op: ReduceOp) -> Result<()>;
    /// Gathers every rank's `t` (same shape on all ranks), concatenated along dim 0 in rank order
    /// (a scalar becomes a vector of `world_size` values).
    fn all_gather(&self, t: &Tensor) -> Result<Tensor>;
    /// Overwrites `t` on every rank with rank `root`'s value.
    fn broadcast(&self, t: &mut Tensor, root: usize) -> Result<()>;
    /// Reduces `t` (dim 0 divisible by the world size, same shape everywhere) over ranks and
    /// returns this rank's block of dim 0: rank `r` gets rows `r·k .. (r+1)·k` of the reduction.
    fn reduce_scatter(&self, t: &Tensor, op: ReduceOp) -> Result<Tensor>;
    /// Sends `t` to rank `dest` (blocks until the matching [`ProcessGroup::recv`] may proceed).
    fn send(&self, t: &Tensor, dest: usize) -> Result<()>;
    /// Receives into `t` (its shape and kind must match what `src` sends) from rank `src`.
    fn recv(&self, t: &mut Tensor, src: usize) -> Result<()>;
    /// Sends `send` to `dest` while receiving `recv` from `src`; a ring shift without deadlock.
    fn send_recv(&self, send: &Tensor, dest: usize, recv: &mut Tensor, src: usize) -> Result<()>;
    /// Blocks until every rank arrives.
    fn barrier(&self) -> Result<()>;
    /// Splits the group like `MPI_Comm_split`: ranks passing the same `color` form a sub-group,
    /// ordered by `key` (then by rank). Every rank must call it.
    fn split(&self, color: usize, key: usize) -> Result<Box<dyn ProcessGroup>>;
    /// Called when this rank gives up with `reason`: in a multi-rank job, prints it and stops
    /// every rank (they would otherwise wait on this one until their collective timeout).
    /// Returns only where there is no one else to stop.
    fn abort(&self, reason: &str);
    /// Short backend name for logs.
    fn backend(&self) -> &'static str;
    /// Whether tensors of `kind` travel as they are (host-memory backends carry no bfloat16:
    /// bucketed collectives widen such tensors to float32 on the way).
    fn carries(&self, kind: tch::Kind) -> bool {
        crate::tensor_buf::host_carries(kind)
    }
}

/// The group of one: every collective is the identity.
#[derive(Debug, Default, Clone, Copy)]
pub struct SingleProcess;

/// Checks that `peer` is rank 0, the only rank of a one-process group.
fn only_self(op: &'static str, peer: usize) -> Result<()> {
    if peer == 0 {
        Ok(())
    } else {
        Err(ShardingError::Collective {
            op,
            msg: format!("rank {peer} does not exist in a single-process group"),
        })
    }
}

impl ProcessGroup for SingleProcess {
    fn rank(&self) -> usize {
        0
    }
    fn world_size(&self) -> usize {
        1
    }
    fn all_reduce(&self, _t: &mut Tensor, _op: ReduceOp) -> Result<()> {
        Ok(())
    }
    fn all_gather(&self, t: &Tensor) -> Result<Tensor> {
        Ok(if t.dim() == 0 {
            t.reshape([1])
        } else {
            t.shallow_clone()
        })
    }
    fn broadcast(&self, _t: &mut Tensor, root: usize) -> Result<()> {
        only_self("broadcast", root)
    }
    fn reduce_scatter(&self, t: &Tensor, _op: ReduceOp) -> Result<Tensor> {
        Ok(t.shallow_clone())
    }
    fn send(&self, _t: &Tensor, dest: usize) -> Result<()> {
        // A blocking send to oneself would never be matched.
        Err(ShardingError::Collective {
            op: "send",
            msg: format!("rank 0 of a single-process group cannot send to rank {dest}"),
        })
    }
    fn recv(&self, _t: &mut Tensor, src: usize) -> Result<()> {
        Err(ShardingError::Collective {
            op: "recv",
            msg: format!("rank 0 of a single-process group cannot receive from rank {src}"),
        })
    }
    fn send_recv(&self, send: &Tensor, dest: usize, recv: &mut Tensor, src: usize) -> Result<()> {
        only_self("send_recv", dest)?;
        only_self("send_recv", src)?;
        if send.size() != recv.size() {
            return Err(ShardingError::Collective {
                op: "send_recv",
                msg: format!(
                    "sent shape {:?} differs from the receive buffer's {:?}",
                    send.size(),
                    recv.size()
                ),
            });
        }
        recv.copy_(send);
        Ok(())
    }
    fn barrier(&self) -> Result<()> {
        Ok(())
    }
    fn split(&self, _color: usize, _key: usize) -> Result<Box<dyn ProcessGroup>> {
        Ok(Box::new(SingleProcess))
    }
    fn abort(&self, _reason: &str) {}
    fn backend(&self) -> &'static str {
        "single"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_process_collectives_are_identity() {
        let g = SingleProcess;
        let mut t = Tensor::from_slice(&[1.0f32, 2.0]);
        g.all_reduce(&mut t, ReduceOp::Sum).unwrap();
        assert_eq!(Vec::<f32>::try_from(&t).unwrap(), vec![1.0, 2.0]);
        g.all_reduce(&mut t, ReduceOp::Avg).unwrap();
        assert_eq!(Vec::<f32>::try_from(&t).unwrap(), vec![1.0, 2.0]);
        let gathered = g.all_gather(&t).unwrap();
        assert_eq!(gathered.size(), vec![2]);
        assert_eq!(g.all_gather(&Tensor::from(3i64)).unwrap().size(), vec![1]);
        assert_eq!((g.rank(), g.world_size()), (0, 1));
        let rs = g.reduce_scatter(&t, ReduceOp::Sum).unwrap();
        assert_eq!(Vec::<f32>::try_from(&rs).unwrap(), vec![1.0, 2.0]);
        g.broadcast(&mut t, 0).unwrap();
        g.barrier().unwrap();
        let sub = g.split(3, 0).unwrap();
        assert_eq!((sub.rank(), sub.world_size()), (0, 1));
    }

    #[test]
    fn single_process_point_to_point() {
        let g = SingleProcess;
        let send = Tensor::from_slice(&[4i64, 5]);
        let mut recv = Tensor::zeros([2], (tch::Kind::Int64, tch::Device::Cpu));
        g.send_recv(&send, 0, &mut recv, 0).unwrap();
        assert_eq!(Vec::<i64>::try_from(&recv).unwrap(), vec![4, 5]);
        let err = g.send(&send, 0).unwrap_err();
        assert!(err.to_string().contains("send"), "{err}");
        assert!(g.recv(&mut recv, 0).is_err());
        let err = g.broadcast(&mut recv, 1).unwrap_err();
        assert!(err.to_string().contains("rank 1"), "{err}");
        let mut short = Tensor::zeros([3], (tch::Kind::Int64, tch::Device::Cpu));
        assert!(g.send_recv(&send, 0, &mut short, 0).is_err());
    }
}
