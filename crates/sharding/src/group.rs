//! The process-group abstraction and its single-process implementation.

use crate::error::Result;
use tch::Tensor;

/// How an all-reduce combines the ranks' tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    /// Element-wise sum.
    Sum,
    /// Element-wise mean over ranks.
    Avg,
}

/// Collectives over libtorch tensors; implementations exist per backend.
pub trait ProcessGroup: Send + Sync {
    /// This process's rank in the group.
    fn rank(&self) -> usize;
    /// Number of ranks in the group.
    fn world_size(&self) -> usize;
    /// In-place all-reduce of `t`.
    fn all_reduce(&self, t: &mut Tensor, op: ReduceOp) -> Result<()>;
    /// Gathers every rank's `t` (same shape on all ranks), concatenated along dim 0 in rank order.
    fn all_gather(&self, t: &Tensor) -> Result<Tensor>;
    /// Overwrites `t` on every rank with rank `root`'s value.
    fn broadcast(&self, t: &mut Tensor, root: usize) -> Result<()>;
    /// Blocks until every rank arrives.
    fn barrier(&self) -> Result<()>;
    /// Short backend name for logs.
    fn backend(&self) -> &'static str;
}

/// The group of one: every collective is the identity.
#[derive(Debug, Default, Clone, Copy)]
pub struct SingleProcess;

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
        Ok(t.shallow_clone())
    }
    fn broadcast(&self, _t: &mut Tensor, _root: usize) -> Result<()> {
        Ok(())
    }
    fn barrier(&self) -> Result<()> {
        Ok(())
    }
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
        let gathered = g.all_gather(&t).unwrap();
        assert_eq!(gathered.size(), vec![2]);
        assert_eq!((g.rank(), g.world_size()), (0, 1));
    }
}
