//! Gradient accumulation (`train.accum_steps`): a rank's share of the batch computed in equal
//! micro-batches whose gradients sum to the whole share's.
//!
//! A loss that is a mean over items (PaLI's target tokens) weights each micro-batch by its share
//! of the items. SigLIP's sigmoid loss couples every pair of the batch, so naive accumulation
//! would change the negatives; instead (GradCache, open_clip's `--accum-freq`) every micro-batch
//! is embedded without a graph, the loss and its gradient with respect to all the embeddings are
//! computed once (the ring across ranks included), and each micro-batch is then embedded again
//! with a graph and that gradient pushed through the towers. The price: towers run forward twice.

use crate::error::Result;
use palisade_model::remat;
use tch::{Kind, Tensor};

/// How a step computes its gradients.
#[derive(Debug, Clone, Copy)]
pub struct StepPlan {
    /// Micro-batches per rank (`train.accum_steps`).
    pub micro: usize,
    /// Blocks per checkpointed segment (`train.remat`; 0: none).
    pub remat: usize,
    /// The device type whose bfloat16 autocast the forward runs under (`train.precision:
    /// bf16_mixed`; none otherwise).
    pub autocast: Option<tch::Device>,
}

/// Runs `forward`, then `backward` on its value when it succeeded, under remat of `every`.
pub fn with_remat<T>(
    every: usize,
    forward: impl FnOnce() -> Result<T>,
    backward: impl FnOnce(&T),
) -> Result<T> {
    remat::scope(every, forward, |r| {
        if let Ok(v) = r {
            backward(v)
        }
    })
}

/// The `k`-th of `n` equal slices of `t` along its first dimension.
pub fn slice(t: &Tensor, k: usize, n: usize) -> Tensor {
    let m = t.size()[0] / n as i64;
    t.narrow(0, k as i64 * m, m)
}

/// Backward of a loss that is a mean over items, in `n` micro-batches: `counts[k]` items in
/// micro-batch `k`, whose mean loss `loss(k)` gives; `share` is this rank's share of the whole
/// batch's items (their count over all ranks divided by the ranks; on one rank, the sum of
/// `counts`). Each micro-batch weighs `counts[k] / share`, so that the ranks' gradients, once
/// averaged, are those of the mean over every item of the global batch however unevenly the
/// items fall. Returns this rank's value of that weighting, whose mean over ranks is the
/// global batch's mean loss.
pub fn backward_item_mean(
    counts: &[f64],
    share: f64,
    remat: usize,
    mut loss: impl FnMut(usize) -> Result<Tensor>,
) -> Result<f64> {
    let total = share;
    let mut value = 0.0;
    for (k, &c) in counts.iter().enumerate() {
        // A micro-batch without items adds nothing (its mean would be 0/0); a share without
        // any yields the NaN the trainer reports.
        if c == 0.0 && total > 0.0 {
            continue;
        }
        let w = if total > 0.0 {
            c / total
        } else {
            1.0 / counts.len() as f64
        };
        let l = with_remat(remat, || loss(k), |l| (l * w).backward())?;
        value += w * l.double_value(&[]);
    }
    Ok(value)
}

/// Backward of a loss over the embeddings of the whole share, exactly, in `n` micro-batches:
/// `embed(k)` gives micro-batch `k`'s image and text embeddings (with a graph where gradients
/// are on), `loss` the loss of all of them. Returns the loss.
pub fn backward_embedding_loss(
    plan: StepPlan,
    embed: impl Fn(usize) -> Result<(Tensor, Tensor)>,
    loss: impl FnOnce(&Tensor, &Tensor) -> Result<Tensor>,
) -> Result<f64> {
    let n = plan.micro;
    if n == 1 {
        let forward = || embed(0).and_then(|(zimg, ztxt)| loss(&zimg, &ztxt));
        let l = with_remat(plan.remat, forward, |l| l.backward())?;
        return Ok(l.double_value(&[]));
    }
    let cached = tch::no_grad(|| (0..n).map(&embed).collect::<Result<Vec<_>>>())?;
    let (imgs, txts): (Vec<Tensor>, Vec<Tensor>) = cached.into_iter().unzip();
    let zimg = Tensor::cat(&imgs, 0).detach().set_requires_grad(true);
    let ztxt = Tensor::cat(&txts, 0).detach().set_requires_grad(true);
    // Gradients of the loss for its own parameters (temperature, bias) land now, and with
    // respect to the embeddings in their .grad.
    let l = loss(&zimg, &ztxt)?;
    l.backward();
    let (g_img, g_txt) = (zimg.grad(), ztxt.grad());
    for k in 0..n {
        // Σ z·g has gradient g with respect to z: the towers receive exactly their share.
        let push = |(a, b): &(Tensor, Tensor)| {
            let pushed = [(a, &g_img), (b, &g_txt)]
                .into_iter()
                .filter(|(z, _)| z.requires_grad())
                .map(|(z, g)| (z * slice(g, k, n).to_kind(z.kind())).sum(Kind::Float))
                .reduce(|x, y| x + y);
            if let Some(s) = pushed {
                s.backward();
            }
        };
        let _ = with_remat(plan.remat, || embed(k), push)?;
    }
    Ok(l.double_value(&[]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, nn::Module, Device};

    fn grads(vs: &nn::VarStore) -> Vec<Tensor> {
        let mut v: Vec<_> = vs.variables().into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.into_iter().map(|(_, t)| t.grad().copy()).collect()
    }

    fn assert_close(a: &[Tensor], b: &[Tensor]) {
        for (x, y) in a.iter().zip(b) {
            let d = (x - y).abs().max().double_value(&[]);
            let scale = y.abs().max().double_value(&[]).max(1e-6);
            assert!(d / scale < 1e-5, "gradients differ by {d} (scale {scale})");
        }
    }

    #[test]
    fn token_means_in_micro_batches_equal_the_whole_batch() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let lin = nn::linear(vs.root(), 8, 11, Default::default());
        let x = Tensor::randn([8, 5, 8], (Kind::Float, Device::Cpu));
        // Uneven valid tokens per example: -100 marks padding, as after EOS.
        let labels = Tensor::randint(11, [8, 5], (Kind::Int64, Device::Cpu));
        let pad = Tensor::arange(5, (Kind::Int64, Device::Cpu))
            .ge_tensor(&Tensor::from_slice(&[5i64, 1, 3, 0, 2, 5, 4, 1]).unsqueeze(1));
        let labels = labels.masked_fill(&pad, -100);
        let loss_of = |x: &Tensor, l: &Tensor| -> Result<Tensor> {
            Ok(palisade_model::t5::token_cross_entropy(
                &lin.forward(x),
                l,
                0.1,
            ))
        };
        let all = labels.ne(-100).sum(Kind::Float).double_value(&[]);
        let whole = backward_item_mean(&[all], all, 0, |_| loss_of(&x, &labels)).unwrap();
        let g1 = grads(&vs);
        vs.variables().values().for_each(|t| {
            let _ = t.grad().zero_();
        });
        let n = 4;
        let counts: Vec<f64> = (0..n)
            .map(|k| {
                slice(&labels, k, n)
                    .ne(-100)
                    .sum(Kind::Float)
                    .double_value(&[])
            })
            .collect();
        // Uneven (6, 3, 7, 5 tokens): a plain average of micro-batch means would be wrong.
        assert!(counts.iter().any(|&c| c != counts[0]), "{counts:?}");
        let split = backward_item_mean(&counts, all, 0, |k| {
            loss_of(&slice(&x, k, n), &slice(&labels, k, n))
        })
        .unwrap();
        assert!((whole - split).abs() < 1e-5, "{whole} vs {split}");
        assert_close(&grads(&vs), &g1);
    }

    #[test]
    fn sigmoid_loss_in_micro_batches_equals_the_whole_batch() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let img = nn::linear(vs.root() / "img", 6, 4, Default::default());
        let txt = nn::linear(vs.root() / "txt", 5, 4, Default::default());
        let scale = vs.root().var("scale", &[1], nn::Init::Const(2.3));
        let bias = vs.root().var("bias", &[1], nn::Init::Const(-10.0));
        let (xi, xt) = (
            Tensor::randn([8, 6], (Kind::Float, Device::Cpu)),
            Tensor::randn([8, 5], (Kind::Float, Device::Cpu)),
        );
        let norm = |z: Tensor| &z / z.norm_scalaropt_dim(2, [-1], true);
        let run = |n: usize| {
            vs.variables().values().for_each(|t| {
                if t.grad().defined() {
                    let _ = t.grad().zero_();
                }
            });
            let embed = |k: usize| -> Result<(Tensor, Tensor)> {
                Ok((
                    norm(img.forward(&slice(&xi, k, n))),
                    norm(txt.forward(&slice(&xt, k, n))),
                ))
            };
            let plan = StepPlan {
                micro: n,
                remat: 0,
                autocast: None,
            };
            let loss = backward_embedding_loss(plan, embed, |a, b| {
                Ok(palisade_model::sigmoid_loss(a, b, &scale, &bias))
            })
            .unwrap();
            (loss, grads(&vs))
        };
        let (l1, g1) = run(1);
        let (l4, g4) = run(4);
        assert!((l1 - l4).abs() < 1e-6, "{l1} vs {l4}");
        assert_close(&g4, &g1);
        // Naive accumulation (each micro-batch its own negatives) gives another loss.
        let naive: f64 = (0..4)
            .map(|k| {
                let (a, b) = (
                    norm(img.forward(&slice(&xi, k, 4))),
                    norm(txt.forward(&slice(&xt, k, 4))),
                );
                palisade_model::sigmoid_loss(&a, &b, &scale, &bias).double_value(&[]) / 4.0
            })
            .sum();
        assert!((naive - l1).abs() > 1e-3, "naive {naive} vs exact {l1}");
    }
}
