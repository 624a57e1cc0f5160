//! AdamW with decoupled weight decay (Loshchilov & Hutter).

use super::{Optimizer, Param};
use crate::error::Result;
use palisade_model::fused;
use std::path::Path;
use tch::Tensor;

/// AdamW hyper-parameters.
#[derive(Debug, Clone, Copy)]
pub struct AdamWConfig {
    /// β₁ and β₂.
    pub betas: [f64; 2],
    /// ε added to the denominator.
    pub eps: f64,
    /// Decoupled weight decay (applied to matrices, not to biases, norms or scalars).
    pub weight_decay: f64,
}

/// One parameter's moments.
#[derive(Debug)]
struct Moments {
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
}

/// AdamW over named parameters.
#[derive(Debug)]
pub struct AdamW {
    cfg: AdamWConfig,
    params: Vec<Param>,
    moments: Vec<Moments>,
    /// Updates applied so far (bias correction uses it).
    pub step: u64,
}

impl AdamW {
    /// Tracks the given trainable parameters (sorted by name for a stable order).
    pub fn new(params: Vec<(String, Tensor)>, cfg: AdamWConfig) -> AdamW {
        let params = Param::sorted(params);
        let moments = params
            .iter()
            .map(|p| Moments {
                exp_avg: p.tensor.zeros_like(),
                exp_avg_sq: p.tensor.zeros_like(),
            })
            .collect();
        AdamW {
            cfg,
            params,
            moments,
            step: 0,
        }
    }
}

impl AdamW {
    /// Each moment under its checkpoint name.
    fn named(&self) -> impl Iterator<Item = (String, &Tensor)> {
        self.params.iter().zip(&self.moments).flat_map(|(p, m)| {
            [
                (format!("exp_avg.{}", p.name), &m.exp_avg),
                (format!("exp_avg_sq.{}", p.name), &m.exp_avg_sq),
            ]
        })
    }
}

impl Optimizer for AdamW {
    fn params(&self) -> &[Param] {
        &self.params
    }

    fn params_mut(&mut self) -> &mut [Param] {
        &mut self.params
    }

    fn step(&mut self, lr: f64) {
        self.step += 1;
        let wd = self.cfg.weight_decay;
        // One fused kernel per group of equal learning rate and decay, as PyTorch's
        // `AdamW(fused=True)`: one pass over each tensor instead of about six small kernels.
        let mut groups: Vec<(f64, f64, Vec<usize>)> = Vec::new();
        for (i, p) in self.params.iter().enumerate() {
            if !p.tensor.grad().defined() {
                continue;
            }
            let key = (lr * p.lr_mult, if p.decay { wd } else { 0.0 });
            match groups.iter_mut().find(|g| (g.0, g.1) == key) {
                Some(g) => g.2.push(i),
                None => groups.push((key.0, key.1, vec![i])),
            }
        }
        tch::no_grad(|| {
            for (lr, weight_decay, members) in groups {
                let pick =
                    |f: &dyn Fn(usize) -> Tensor| members.iter().map(|&i| f(i)).collect::<Vec<_>>();
                let params = pick(&|i| self.params[i].tensor.shallow_clone());
                let grads = pick(&|i| {
                    let g = self.params[i].tensor.grad();
                    g.to_kind(self.params[i].tensor.kind())
                });
                let exp_avgs = pick(&|i| self.moments[i].exp_avg.shallow_clone());
                let exp_avg_sqs = pick(&|i| self.moments[i].exp_avg_sq.shallow_clone());
                fused::adamw_(
                    &params,
                    &grads,
                    &exp_avgs,
                    &exp_avg_sqs,
                    fused::AdamWStep {
                        lr,
                        betas: self.cfg.betas,
                        weight_decay,
                        eps: self.cfg.eps,
                        step: self.step,
                    },
                );
            }
        });
    }

    /// Moments as named tensors (`exp_avg.NAME`, `exp_avg_sq.NAME`) for checkpoints.
    fn state_tensors(&self) -> Vec<(String, Tensor)> {
        self.named()
            .map(|(k, t)| (k, t.to_device(tch::Device::Cpu).contiguous()))
            .collect()
    }

    /// Restores moments written by `state_tensors`; every one must be present with its shape.
    fn load_state(
        &mut self,
        tensors: Vec<(String, Tensor)>,
        step: u64,
        origin: &Path,
    ) -> Result<()> {
        let slots = self.named().map(|(k, t)| (k, t.shallow_clone())).collect();
        super::restore(slots, tensors, origin)?;
        self.step = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn first_step_moves_each_weight_by_lr() {
        // With bias correction, Adam's first update is lr · sign(g) (for |g| ≫ ε).
        let p = Tensor::from_slice(&[1.0f32, -1.0, 0.5, 2.0])
            .view([2, 2])
            .set_requires_grad(true);
        let mut opt = AdamW::new(
            vec![("w".into(), p.shallow_clone())],
            AdamWConfig {
                betas: [0.9, 0.999],
                eps: 1e-8,
                weight_decay: 0.0,
            },
        );
        (&p * Tensor::from_slice(&[3.0f32, -2.0, 1.0, -0.5]).view([2, 2]))
            .sum(Kind::Float)
            .backward();
        opt.step(0.1);
        let got = Vec::<f32>::try_from(p.detach().flatten(0, 1)).unwrap();
        let want = [0.9f32, -0.9, 0.4, 2.1];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{got:?}");
        }
    }

    #[test]
    fn clipping_bounds_the_global_norm() {
        let p = Tensor::zeros([3], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
        let opt = AdamW::new(
            vec![("b".into(), p.shallow_clone())],
            AdamWConfig {
                betas: [0.9, 0.999],
                eps: 1e-8,
                weight_decay: 0.0,
            },
        );
        (&p * Tensor::from_slice(&[3.0f32, 4.0, 0.0]))
            .sum(Kind::Float)
            .backward();
        let before = opt.clip_grad_norm(1.0);
        assert!((before - 5.0).abs() < 1e-5);
        assert!((opt.grad_norm() - 1.0).abs() < 1e-4);
    }
}
