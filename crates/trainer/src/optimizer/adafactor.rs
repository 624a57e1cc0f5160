//! Adafactor as big_vision trains ViTs and SigLIP (`big_vision.scale_by_adafactor`, after
//! optax's `scale_by_factored_rms`): second moments factored into row and column means for
//! tensors whose two largest dimensions reach `min_dim_size_to_factor`, full otherwise; a
//! decay rate growing as 1 − (t+1)^−decay_rate up to `beta2_cap`; an optional update clip by
//! RMS; optional momentum (an EMA of the updates, no bias correction); decoupled weight decay.

use super::{Optimizer, Param};
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::{Kind, Tensor};

/// Adafactor's hyper-parameters (`train.adafactor`), big_vision's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdafactorConfig {
    /// Exponent of the second-moment decay schedule.
    pub decay_rate: f64,
    /// Upper bound of the second-moment decay.
    pub beta2_cap: f64,
    /// Momentum over the updates (`null`: none).
    pub momentum: Option<f64>,
    /// Updates whose RMS exceeds this are scaled down to it (`null`: no clip).
    pub clipping_threshold: Option<f64>,
    /// Both of a tensor's two largest dimensions must reach this to be factored.
    pub min_dim_size_to_factor: i64,
    /// Added to the squared gradient.
    pub eps: f64,
}

impl Default for AdafactorConfig {
    fn default() -> Self {
        AdafactorConfig {
            decay_rate: 0.8,
            beta2_cap: 0.999,
            momentum: Some(0.9),
            clipping_threshold: None,
            min_dim_size_to_factor: 32,
            eps: 1e-30,
        }
    }
}

/// One parameter's state: factored (`v_row`, `v_col`) or full (`v`), and momentum.
#[derive(Debug)]
struct State {
    /// The (second-largest, largest) dimensions when factored.
    dims: Option<(i64, i64)>,
    v_row: Tensor,
    v_col: Tensor,
    v: Tensor,
    m: Option<Tensor>,
}

/// Adafactor over named parameters.
#[derive(Debug)]
pub struct Adafactor {
    cfg: AdafactorConfig,
    weight_decay: f64,
    params: Vec<Param>,
    state: Vec<State>,
    /// Updates applied so far (the decay schedule uses it).
    pub step: u64,
}

/// The dimensions to factor over, as optax chooses them: the two largest, if both are large
/// enough.
fn factored_dims(shape: &[i64], min: i64) -> Option<(i64, i64)> {
    if shape.len() < 2 {
        return None;
    }
    let mut order: Vec<usize> = (0..shape.len()).collect();
    order.sort_by_key(|&i| shape[i]); // stable: ties keep the earlier dimension first
    let (d1, d0) = (order[order.len() - 2], order[order.len() - 1]);
    (shape[d1] >= min).then_some((d1 as i64, d0 as i64))
}

impl Adafactor {
    /// Tracks `params` (sorted by name) with decoupled `weight_decay`.
    pub fn new(
        params: Vec<(String, Tensor)>,
        cfg: AdafactorConfig,
        weight_decay: f64,
    ) -> Adafactor {
        let params = Param::sorted(params);
        let state = params
            .iter()
            .map(|p| {
                let opts = (Kind::Float, p.tensor.device());
                let shape = p.tensor.size();
                let dims = factored_dims(&shape, cfg.min_dim_size_to_factor);
                let empty = || Tensor::zeros([0], opts);
                let without = |d: i64| {
                    let mut s = shape.clone();
                    s.remove(d as usize);
                    Tensor::zeros(s, opts)
                };
                State {
                    dims,
                    v_row: dims.map_or_else(empty, |(_, d0)| without(d0)),
                    v_col: dims.map_or_else(empty, |(d1, _)| without(d1)),
                    v: if dims.is_some() {
                        empty()
                    } else {
                        Tensor::zeros(shape.as_slice(), opts)
                    },
                    m: cfg.momentum.map(|_| Tensor::zeros(shape.as_slice(), opts)),
                }
            })
            .collect();
        Adafactor {
            cfg,
            weight_decay,
            params,
            state,
            step: 0,
        }
    }

    /// The second-moment decay of the update made now (0-based step `t`).
    fn decay(&self, t: u64) -> f64 {
        (1.0 - ((t + 1) as f64).powf(-self.cfg.decay_rate)).min(self.cfg.beta2_cap)
    }
}

/// The state tensors of one parameter, by checkpoint name (`v_row`/`v_col` or `v`, and `m`).
fn names<'a>(s: &'a State, name: &str) -> Vec<(String, &'a Tensor)> {
    let mut out = Vec::new();
    if s.dims.is_some() {
        out.push((format!("v_row.{name}"), &s.v_row));
        out.push((format!("v_col.{name}"), &s.v_col));
    } else {
        out.push((format!("v.{name}"), &s.v));
    }
    out.extend(s.m.as_ref().map(|m| (format!("m.{name}"), m)));
    out
}

impl Optimizer for Adafactor {
    fn params(&self) -> &[Param] {
        &self.params
    }

    fn params_mut(&mut self) -> &mut [Param] {
        &mut self.params
    }

    fn step(&mut self, lr: f64) {
        let decay = self.decay(self.step);
        self.step += 1;
        let cfg = self.cfg;
        let wd = self.weight_decay;
        tch::no_grad(|| {
            for (p, s) in self.params.iter_mut().zip(&mut self.state) {
                let g = p.tensor.grad();
                if !g.defined() {
                    continue;
                }
                let g = g.to_kind(Kind::Float);
                let g2 = g.square() + cfg.eps;
                let mut u = match s.dims {
                    Some((d1, d0)) => {
                        let _ = s.v_row.g_mul_scalar_(decay).g_add_(
                            &(g2.mean_dim([d0].as_slice(), false, Kind::Float) * (1.0 - decay)),
                        );
                        let _ = s.v_col.g_mul_scalar_(decay).g_add_(
                            &(g2.mean_dim([d1].as_slice(), false, Kind::Float) * (1.0 - decay)),
                        );
                        // v_row lost d0, so d1 sits one earlier there when it came after d0.
                        let reduced_d1 = if d1 > d0 { d1 - 1 } else { d1 };
                        let row_mean = s.v_row.mean_dim([reduced_d1].as_slice(), true, Kind::Float);
                        let row_factor = (&s.v_row / row_mean).rsqrt().unsqueeze(d0);
                        let col_factor = s.v_col.rsqrt().unsqueeze(d1);
                        &g * row_factor * col_factor
                    }
                    None => {
                        let _ = s.v.g_mul_scalar_(decay).g_add_(&(&g2 * (1.0 - decay)));
                        &g * s.v.rsqrt()
                    }
                };
                if let Some(c) = cfg.clipping_threshold {
                    let rms = u.square().mean(Kind::Float).sqrt().double_value(&[]);
                    u /= (rms / c).max(1.0);
                }
                if let (Some(beta), Some(m)) = (cfg.momentum, s.m.as_mut()) {
                    let _ = m.g_mul_scalar_(beta).g_add_(&(&u * (1.0 - beta)));
                    u = m.shallow_clone();
                }
                let lr = lr * p.lr_mult;
                if p.decay && wd > 0.0 {
                    let _ = p.tensor.g_mul_scalar_(1.0 - lr * wd);
                }
                let _ = p.tensor.g_sub_(&(u * lr).to_kind(p.tensor.kind()));
            }
        });
    }

    fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (p, s) in self.params.iter().zip(&self.state) {
            for (key, t) in names(s, &p.name) {
                out.push((key, t.to_device(tch::Device::Cpu).contiguous()));
            }
        }
        out
    }

    fn load_state(
        &mut self,
        tensors: Vec<(String, Tensor)>,
        step: u64,
        origin: &Path,
    ) -> Result<()> {
        let slots = self
            .params
            .iter()
            .zip(&self.state)
            .flat_map(|(p, s)| names(s, &p.name))
            .map(|(k, t)| (k, t.shallow_clone()))
            .collect();
        super::restore(slots, tensors, origin)?;
        self.step = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The formulas, written out for a 2 × 3 matrix factored over rows and columns (indexed
    /// as the paper writes them).
    #[test]
    #[allow(clippy::needless_range_loop)]
    fn factored_updates_follow_the_formulas_over_a_fixed_gradient_sequence() {
        let cfg = AdafactorConfig {
            min_dim_size_to_factor: 2,
            momentum: Some(0.5),
            ..AdafactorConfig::default()
        };
        let w0 = [[0.5f64, -1.0, 2.0], [1.5, 0.0, -0.5]];
        let p = Tensor::from_slice(&w0.concat())
            .view([2, 3])
            .to_kind(Kind::Float)
            .set_requires_grad(true);
        let mut opt = Adafactor::new(vec![("w".into(), p.shallow_clone())], cfg, 0.0);
        let grads = [
            [[1.0f64, -2.0, 0.5], [0.25, 3.0, -1.0]],
            [[-0.5, 1.0, 2.0], [1.0, -1.0, 0.5]],
            [[2.0, 0.5, -0.25], [-1.5, 0.75, 1.0]],
        ];
        let lr = 0.1;
        // Reference state, by the formulas.
        let (mut w, mut vr, mut vc, mut m) = (w0, [0.0f64; 2], [0.0f64; 3], [[0.0f64; 3]; 2]);
        for (t, g) in grads.iter().enumerate() {
            let coeff = Tensor::from_slice(&g.concat())
                .view([2, 3])
                .to_kind(Kind::Float);
            (&p * coeff).sum(Kind::Float).backward();
            opt.step(lr);
            opt.zero_grad();

            let beta2 = (1.0 - ((t + 1) as f64).powf(-0.8)).min(0.999);
            let g2 = |i: usize, j: usize| g[i][j] * g[i][j] + 1e-30;
            for i in 0..2 {
                vr[i] = beta2 * vr[i] + (1.0 - beta2) * (0..3).map(|j| g2(i, j)).sum::<f64>() / 3.0;
            }
            for j in 0..3 {
                vc[j] = beta2 * vc[j] + (1.0 - beta2) * (0..2).map(|i| g2(i, j)).sum::<f64>() / 2.0;
            }
            let row_mean = (vr[0] + vr[1]) / 2.0;
            for i in 0..2 {
                for j in 0..3 {
                    let u = g[i][j] / (vr[i] / row_mean).sqrt() / vc[j].sqrt();
                    m[i][j] = 0.5 * m[i][j] + 0.5 * u;
                    w[i][j] -= lr * m[i][j];
                }
            }
        }
        let got = Vec::<f64>::try_from(p.detach().to_kind(Kind::Double).flatten(0, 1)).unwrap();
        for (g, want) in got.iter().zip(w.concat()) {
            assert!((g - want).abs() < 1e-5, "{got:?} vs {w:?}");
        }
        // The state survives a checkpoint round trip.
        let saved = opt.state_tensors();
        assert_eq!(saved.len(), 3, "v_row, v_col and m");
        let mut again = Adafactor::new(vec![("w".into(), p.shallow_clone())], cfg, 0.0);
        again.load_state(saved, 3, Path::new("x")).unwrap();
        assert_eq!(again.decay(again.step), opt.decay(opt.step));
    }

    /// Vectors and small matrices keep a full second moment; the update clip bounds the RMS.
    #[test]
    fn unfactored_updates_and_clipping() {
        assert_eq!(factored_dims(&[4], 1), None);
        assert_eq!(factored_dims(&[64, 16], 32), None);
        assert_eq!(factored_dims(&[64, 128], 32), Some((0, 1)));
        assert_eq!(factored_dims(&[3, 128, 64], 32), Some((2, 1)));
        let cfg = AdafactorConfig {
            momentum: None,
            clipping_threshold: Some(0.5),
            ..AdafactorConfig::default()
        };
        let p = Tensor::zeros([2], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
        let mut opt = Adafactor::new(vec![("b".into(), p.shallow_clone())], cfg, 0.0);
        (&p * Tensor::from_slice(&[3.0f32, -4.0]))
            .sum(Kind::Float)
            .backward();
        opt.step(1.0);
        // First step: β₂ = 0, so v = g² and u = sign(g) (RMS 1), clipped to RMS 0.5.
        let got = Vec::<f32>::try_from(p.detach()).unwrap();
        assert!(
            (got[0] + 0.5).abs() < 1e-6 && (got[1] - 0.5).abs() < 1e-6,
            "{got:?}"
        );
    }
}
