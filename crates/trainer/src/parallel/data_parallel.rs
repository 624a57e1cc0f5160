//! Data parallelism: every rank starts from rank 0's parameters, and after each backward the
//! gradients are averaged over the `dp` ranks in flat buckets (one collective per bucket).

use super::Mesh;
use crate::error::{Result, TrainerError};
use palisade_sharding::{all_reduce_bucketed, broadcast_bucketed, ReduceOp};
use tch::{nn, Tensor};

/// Data parallelism over a model's variables.
pub struct DataParallel {
    /// Shallow handles to the trainable parameters, in name order (every rank agrees on it).
    params: Vec<Tensor>,
    /// Their names.
    names: Vec<String>,
    bucket_bytes: usize,
}

impl DataParallel {
    /// Data parallelism for the trainable variables of `vs`, `bucket_bytes` per collective.
    pub fn new(vs: &nn::VarStore, bucket_bytes: usize) -> DataParallel {
        let (names, params) = palisade_model::weights::trainable(vs).into_iter().unzip();
        DataParallel {
            params,
            names,
            bucket_bytes,
        }
    }

    /// The same, less the parameters for which `elsewhere` is true (`parallel.shard: full`
    /// averages its block parameters' gradients per segment).
    pub fn except(self, elsewhere: impl Fn(&str) -> bool) -> DataParallel {
        let (names, params) = self
            .names
            .into_iter()
            .zip(self.params)
            .filter(|(n, _)| !elsewhere(n))
            .unzip();
        DataParallel {
            params,
            names,
            bucket_bytes: self.bucket_bytes,
        }
    }

    /// Overwrites every variable of `vs` (frozen ones too) with rank 0's values.
    pub fn broadcast_parameters(&self, mesh: &Mesh, vs: &nn::VarStore) -> Result<()> {
        let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let mut all: Vec<Tensor> = named.into_iter().map(|(_, t)| t).collect();
        broadcast_bucketed(mesh.dp(), &mut all, 0, self.bucket_bytes)?;
        Ok(())
    }

    /// Averages the gradients of step `step` over the `dp` ranks, in place. Every trainable
    /// parameter must have one when there are several ranks: the bucket layout must agree.
    pub fn average_gradients(&self, mesh: &Mesh, step: u64) -> Result<()> {
        let mut grads: Vec<Tensor> = self
            .params
            .iter()
            .map(|p| p.grad())
            .filter(|g| g.defined())
            .collect();
        if mesh.dp().world_size() > 1 && grads.len() != self.params.len() {
            return Err(TrainerError::Numerics {
                step,
                msg: "a trainable parameter got no gradient; data parallelism needs all".into(),
            });
        }
        all_reduce_bucketed(mesh.dp(), &mut grads, ReduceOp::Avg, self.bucket_bytes)?;
        Ok(())
    }
}
