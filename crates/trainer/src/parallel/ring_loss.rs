//! SigLIP's sigmoid loss over the global batch of a data-parallel job, with memory per rank
//! that does not grow with the number of ranks; and the choice between it and the plain loss.
//!
//! Each rank holds `n` image and `n` text embeddings. Text blocks travel around a ring one at a
//! time (`send_recv` to the next rank), so a rank only ever holds its own embeddings, one
//! visiting text block, that block's gradient accumulator and `n × n` logits: never the `n × N`
//! logits of an all-gather (open_clip's approach, whose memory grows with the ranks).
//!
//! tch has no custom autograd functions, so the loss, and its closed-form gradients with respect
//! to the image embeddings, text embeddings, t' and b, are computed block by block during the
//! ring pass (nothing per block is kept for a later backward). A text block's gradient travels
//! with it and is home after the last hop. The returned tensor carries those gradients through a
//! surrogate `Σ zimg·ĝ_img + Σ ztxt·ĝ_txt + t'·ĝ_t + b·ĝ_b`, whose backward yields exactly them.
//!
//! Normalisation follows data parallelism (big_vision's convention): rank `r` returns
//! `(1/n) Σ_{i ∈ r} Σ_{j ∈ all} ℓ_ij`, so the mean over ranks of the values, and of the gradients
//! of replicated parameters (what the trainer's all-reduce computes), equal
//! [`palisade_model::sigmoid_loss`] over the global batch of `N = n · world` pairs.

use super::Mesh;
use palisade_sharding::{ProcessGroup, Result, ShardingError};
use tch::{Kind, Tensor};

/// SigLIP's loss of this rank's pairs for the mesh: the ring over the `dp` ranks when there are
/// several (its mean over ranks is the global batch's loss), the plain loss on one.
pub fn sigmoid_loss(
    mesh: &Mesh,
    zimg: &Tensor,
    ztxt: &Tensor,
    logit_scale: &Tensor,
    logit_bias: &Tensor,
) -> Result<Tensor> {
    if mesh.dp().world_size() == 1 {
        return Ok(palisade_model::sigmoid_loss(
            zimg,
            ztxt,
            logit_scale,
            logit_bias,
        ));
    }
    distributed_sigmoid_loss(mesh.dp(), zimg, ztxt, logit_scale, logit_bias)
}

/// Closed-form gradient pieces of one rank's loss, before the `1/n` normalisation.
struct Sums {
    loss: Tensor,
    g_img: Tensor,
    g_txt: Tensor,
    g_scale: Tensor,
    g_bias: Tensor,
}

/// This rank's share of the sigmoid loss over every rank's pairs; see the module docs.
///
/// `zimg`, `ztxt`: this rank's L2-normalised embeddings `[n, D]`, pair `i` matching `i`, with
/// the same `n` and `D` on every rank. `logit_scale` is t' (the temperature is `exp(t')`),
/// `logit_bias` is b. Every rank must call it in the same step.
pub fn distributed_sigmoid_loss(
    group: &dyn ProcessGroup,
    zimg: &Tensor,
    ztxt: &Tensor,
    logit_scale: &Tensor,
    logit_bias: &Tensor,
) -> Result<Tensor> {
    check_shapes(group, zimg, ztxt)?;
    let n = zimg.size()[0];
    let s = tch::no_grad(|| ring_pass(group, zimg, ztxt, logit_scale, logit_bias))?;
    let inv_n = 1.0 / n as f64;
    let term = |x: &Tensor, g: &Tensor| (x.to_kind(Kind::Float) * (g * inv_n)).sum(Kind::Float);
    let surrogate = term(zimg, &s.g_img)
        + term(ztxt, &s.g_txt)
        + term(logit_scale, &s.g_scale)
        + term(logit_bias, &s.g_bias);
    // Value of the loss, gradients of the surrogate.
    Ok(&surrogate - surrogate.detach() + s.loss * inv_n)
}

/// Checks shapes locally, then that every rank has the same batch and width, so the ring's
/// messages match (a mismatch would otherwise be a fatal MPI truncation).
fn check_shapes(group: &dyn ProcessGroup, zimg: &Tensor, ztxt: &Tensor) -> Result<()> {
    let bad = |msg: String| ShardingError::BadTensor {
        op: "distributed_sigmoid_loss",
        rank: group.rank(),
        msg,
    };
    let (si, st) = (zimg.size(), ztxt.size());
    if si.len() != 2 || si != st {
        return Err(bad(format!(
            "image embeddings {si:?} and text embeddings {st:?} must both be [n, D]"
        )));
    }
    if group.world_size() == 1 {
        return Ok(());
    }
    let all = group.all_gather(&Tensor::from_slice(&si).view([1, 2]))?;
    let all = Vec::<i64>::try_from(&all.reshape([-1])).map_err(|e| bad(e.to_string()))?;
    let differing: Vec<String> = all
        .chunks(2)
        .enumerate()
        .filter(|(_, s)| *s != si.as_slice())
        .map(|(r, s)| format!("rank {r} has {s:?}"))
        .collect();
    if differing.is_empty() {
        Ok(())
    } else {
        Err(bad(format!(
            "embeddings are {si:?} here but {}; every rank needs the same batch size",
            differing.join(", ")
        )))
    }
}

/// The ring pass: loss sum and gradients of this rank's images against every text block, each
/// block's text gradient accumulated on the way and returned to its owner.
fn ring_pass(
    group: &dyn ProcessGroup,
    zimg: &Tensor,
    ztxt: &Tensor,
    logit_scale: &Tensor,
    logit_bias: &Tensor,
) -> Result<Sums> {
    let (rank, world) = (group.rank(), group.world_size());
    let (next, prev) = ((rank + 1) % world, (rank + world - 1) % world);
    let zi = zimg.detach().to_kind(Kind::Float);
    let mut block = ztxt.detach().to_kind(Kind::Float);
    let n = zi.size()[0];
    let scale = logit_scale.detach().to_kind(Kind::Float).exp();
    let bias = logit_bias.detach().to_kind(Kind::Float);
    let opts = (Kind::Float, zi.device());
    let mut acc = Tensor::zeros_like(&block);
    let mut s = Sums {
        loss: Tensor::zeros([], opts),
        g_img: Tensor::zeros_like(&zi),
        g_txt: Tensor::zeros_like(&block),
        g_scale: Tensor::zeros([], opts),
        g_bias: Tensor::zeros([], opts),
    };
    for step in 0..world {
        // At `step` this rank holds the text block of rank `rank - step`.
        let sim = zi.matmul(&block.tr());
        let logits = &sim * &scale + &bias;
        // ℓ = −log σ(y·x) with y = +1 on the own block's diagonal, −1 elsewhere; dℓ/dx = −y·σ(−y·x).
        let labels = if step == 0 {
            Tensor::eye(n, opts) * 2.0 - 1.0
        } else {
            Tensor::full([n, n], -1.0, opts)
        };
        let yx = &labels * &logits;
        s.loss += -yx.log_sigmoid().sum(Kind::Float);
        let dx = -(&labels) * (-yx).sigmoid();
        drop((logits, labels));
        s.g_bias += dx.sum(Kind::Float);
        s.g_scale += (&dx * &sim).sum(Kind::Float) * scale.squeeze();
        drop(sim);
        s.g_img += dx.matmul(&block) * &scale;
        acc += dx.tr().matmul(&zi) * &scale;
        drop(dx);
        if world == 1 {
            s.g_txt = acc;
            break;
        }
        if step + 1 < world {
            // Pass the block on with its gradient so far; take the previous rank's.
            let out = Tensor::cat(&[&block, &acc], 0);
            let mut inc = Tensor::empty_like(&out);
            group.send_recv(&out, next, &mut inc, prev)?;
            drop(out);
            let mut halves = inc.split(n, 0).into_iter();
            if let (Some(b), Some(a)) = (halves.next(), halves.next()) {
                (block, acc) = (b, a);
            }
        } else {
            // The block held now belongs to the next rank: send its finished gradient home.
            let mut home = Tensor::empty_like(&acc);
            group.send_recv(&acc, next, &mut home, prev)?;
            s.g_txt = home;
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_model::sigmoid_loss;
    use palisade_sharding::SingleProcess;
    use tch::Device;

    fn leaf(t: Tensor) -> Tensor {
        t.set_requires_grad(true)
    }

    fn unit_rows(n: i64, d: i64, seed: i64) -> Tensor {
        tch::manual_seed(seed);
        let x = Tensor::randn([n, d], (Kind::Float, Device::Cpu));
        &x / x.norm_scalaropt_dim(2.0, [-1i64].as_slice(), true)
    }

    #[test]
    fn one_rank_matches_sigmoid_loss_and_its_gradients() {
        let (zi0, mut zt0) = (unit_rows(6, 4, 1), unit_rows(6, 4, 2));
        // Make pair 2 a near match so positives and negatives both matter.
        let zt0 = zt0.index_put_(
            &[Some(Tensor::from_slice(&[2i64]))],
            &zi0.get(2).unsqueeze(0),
            false,
        );
        let grads = |dist: bool| {
            let (zi, zt) = (leaf(zi0.copy()), leaf(zt0.copy()));
            let t = leaf(Tensor::from_slice(&[10f32.ln()]));
            let b = leaf(Tensor::from_slice(&[-3.0f32]));
            let loss = if dist {
                distributed_sigmoid_loss(&SingleProcess, &zi, &zt, &t, &b).unwrap()
            } else {
                sigmoid_loss(&zi, &zt, &t, &b)
            };
            loss.backward();
            (loss, zi.grad(), zt.grad(), t.grad(), b.grad())
        };
        let (want, got) = (grads(false), grads(true));
        let diff = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]);
        assert!(diff(&want.0, &got.0) < 1e-5, "loss {want:?} vs {got:?}");
        assert!(diff(&want.1, &got.1) < 1e-5, "image gradients differ");
        assert!(diff(&want.2, &got.2) < 1e-5, "text gradients differ");
        assert!(diff(&want.3, &got.3) < 1e-4, "t' gradients differ");
        assert!(diff(&want.4, &got.4) < 1e-5, "b gradients differ");
        assert!(want.1.abs().sum(Kind::Float).double_value(&[]) > 1e-3);
    }

    #[test]
    fn refuses_mismatched_shapes() {
        let err = distributed_sigmoid_loss(
            &SingleProcess,
            &Tensor::zeros([4, 3], (Kind::Float, Device::Cpu)),
            &Tensor::zeros([5, 3], (Kind::Float, Device::Cpu)),
            &Tensor::zeros([1], (Kind::Float, Device::Cpu)),
            &Tensor::zeros([1], (Kind::Float, Device::Cpu)),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("[4, 3]") && err.contains("[5, 3]"), "{err}");
    }
}
