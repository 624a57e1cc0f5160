//! Collectives over many tensors at once, in flat buckets (one collective per bucket instead of
//! one per tensor): what data parallelism's parameter broadcast and gradient averaging use.

use crate::error::Result;
use crate::group::{ProcessGroup, ReduceOp};
use std::ops::Range;
use tch::Tensor;

/// Default bucket size: large enough to amortise a collective's latency, small enough that the
/// staging copy stays a small fraction of the model.
pub const DEFAULT_BUCKET_BYTES: usize = 25 << 20;

/// Consecutive runs of `tensors` sharing kind and device, each at most `bucket_bytes` (a tensor
/// larger than that gets a bucket of its own). Depends on shapes only, so every rank agrees.
pub fn buckets(tensors: &[Tensor], bucket_bytes: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, t) in tensors.iter().enumerate() {
        let size = t.numel() * t.kind().elt_size_in_bytes();
        let same =
            i > start && t.kind() == tensors[start].kind() && t.device() == tensors[start].device();
        if i > start && (!same || bytes + size > bucket_bytes) {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < tensors.len() {
        out.push(start..tensors.len());
    }
    out
}

/// Runs `op` on each bucket of `tensors` flattened into one tensor (widened to float32 where
/// the group does not carry their kind), then writes the results back in place. A one-rank
/// group skips the copies.
fn per_bucket(
    group: &dyn ProcessGroup,
    tensors: &mut [Tensor],
    bucket_bytes: usize,
    mut op: impl FnMut(&mut Tensor) -> Result<()>,
) -> Result<()> {
    if group.world_size() == 1 {
        return Ok(());
    }
    for range in buckets(tensors, bucket_bytes) {
        let parts: Vec<Tensor> = tensors[range.clone()]
            .iter()
            .map(|t| t.detach().reshape([-1]))
            .collect();
        let kind = tensors[range.start].kind();
        let wire = if group.carries(kind) {
            kind
        } else {
            tch::Kind::Float
        };
        let mut flat = Tensor::cat(&parts, 0).to_kind(wire);
        drop(parts);
        op(&mut flat)?;
        let mut offset = 0;
        for t in &mut tensors[range] {
            let n = t.numel() as i64;
            let src = flat.narrow(0, offset, n).view_as(t);
            tch::no_grad(|| {
                t.copy_(&src);
            });
            offset += n;
        }
    }
    Ok(())
}

/// All-reduces `tensors` (e.g. gradients) in place, `bucket_bytes` at a time.
pub fn all_reduce_bucketed(
    group: &dyn ProcessGroup,
    tensors: &mut [Tensor],
    op: ReduceOp,
    bucket_bytes: usize,
) -> Result<()> {
    per_bucket(group, tensors, bucket_bytes, |flat| {
        group.all_reduce(flat, op)
    })
}

/// Overwrites `tensors` (e.g. parameters) on every rank with rank `root`'s values.
pub fn broadcast_bucketed(
    group: &dyn ProcessGroup,
    tensors: &mut [Tensor],
    root: usize,
    bucket_bytes: usize,
) -> Result<()> {
    per_bucket(group, tensors, bucket_bytes, |flat| {
        group.broadcast(flat, root)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    fn t(n: i64, kind: Kind) -> Tensor {
        Tensor::zeros([n], (kind, tch::Device::Cpu))
    }

    #[test]
    fn buckets_respect_size_and_kind() {
        // 4-byte floats: 10 + 10 fit in 100 bytes, the third does not.
        let ts = vec![
            t(10, Kind::Float),
            t(10, Kind::Float),
            t(10, Kind::Float),
            t(5, Kind::Double),
            t(100, Kind::Double),
        ];
        assert_eq!(buckets(&ts, 100), vec![0..2, 2..3, 3..4, 4..5]);
        assert_eq!(buckets(&ts, 1 << 20), vec![0..3, 3..5]);
        assert!(buckets(&[], 100).is_empty());
    }

    #[test]
    fn one_rank_leaves_tensors_alone() {
        let g = crate::SingleProcess;
        let mut ts = vec![Tensor::from_slice(&[1.0f32, 2.0])];
        all_reduce_bucketed(&g, &mut ts, ReduceOp::Avg, 4).unwrap();
        broadcast_bucketed(&g, &mut ts, 0, 4).unwrap();
        assert_eq!(Vec::<f32>::try_from(&ts[0]).unwrap(), vec![1.0, 2.0]);
    }
}
