//! float32 master weights for a model held in bfloat16 (`train.precision: bf16`): the inner
//! optimizer updates float32 copies of the parameters, whose gradients are the model's bfloat16
//! ones widened, and the model gets the updated copies rounded back. Small updates that
//! bfloat16 would round away accumulate in the masters. The masters travel in the optimizer's
//! state (`master.NAME`), so that a resumed run continues from them exactly; under
//! `parallel.shard: optimizer` each rank keeps the masters of its own share only. Each master
//! keeps its float32 gradient buffer between steps (tch cannot drop a leaf's gradient), so a
//! bf16 parameter costs 2 + 2 + 4 + 4 bytes before the optimizer's own state.

use super::{Optimizer, Param};
use crate::error::Result;
use std::path::Path;
use tch::{Kind, Tensor};

/// An optimizer over float32 masters of bfloat16 parameters.
pub struct MasterWeights {
    inner: Box<dyn Optimizer>,
    /// The model's parameters (bfloat16), in the inner optimizer's order.
    model: Vec<Tensor>,
}

/// float32 copies of `params` (requiring grad, with a zero gradient to copy into), for the
/// inner optimizer to be built over.
pub fn masters(params: &[(String, Tensor)]) -> Vec<(String, Tensor)> {
    params
        .iter()
        .map(|(n, t)| {
            let m = t.detach().to_kind(Kind::Float).set_requires_grad(true);
            // A leaf's gradient exists once a backward reaches it: one through zeros.
            (&m * 0.0).sum(Kind::Float).backward();
            (n.clone(), m)
        })
        .collect()
}

impl MasterWeights {
    /// Wraps `inner`, built over [`masters`] of `model` (the model's own parameters, by name).
    pub fn new(inner: Box<dyn Optimizer>, model: Vec<(String, Tensor)>) -> MasterWeights {
        let by_name: std::collections::HashMap<String, Tensor> = model.into_iter().collect();
        let model = inner
            .params()
            .iter()
            .map(|p| by_name[&p.name].shallow_clone())
            .collect();
        MasterWeights { inner, model }
    }

    /// Copies the masters into the model's parameters, rounded to their kind.
    fn push(&mut self) {
        tch::no_grad(|| {
            for (p, m) in self.model.iter_mut().zip(self.inner.params()) {
                p.copy_(&m.tensor);
            }
        });
    }
}

impl Optimizer for MasterWeights {
    fn params(&self) -> &[Param] {
        self.inner.params()
    }

    fn params_mut(&mut self) -> &mut [Param] {
        self.inner.params_mut()
    }

    fn step(&mut self, lr: f64) {
        tch::no_grad(|| {
            for (p, m) in self.model.iter().zip(self.inner.params()) {
                let g = p.grad();
                let mut mg = m.tensor.grad();
                if g.defined() {
                    mg.copy_(&g);
                } else {
                    let _ = mg.zero_();
                }
            }
        });
        self.inner.step(lr);
        self.push();
    }

    fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = self.inner.state_tensors();
        out.extend(
            self.inner
                .params()
                .iter()
                .map(|p| (format!("master.{}", p.name), p.tensor.detach())),
        );
        out
    }

    fn load_state(
        &mut self,
        tensors: Vec<(String, Tensor)>,
        step: u64,
        origin: &Path,
    ) -> Result<()> {
        let (masters, rest): (Vec<_>, Vec<_>) = tensors
            .into_iter()
            .partition(|(k, _)| k.starts_with("master."));
        self.inner.load_state(rest, step, origin)?;
        // A checkpoint of a float32 run has no masters: the model's (loaded) weights are exact.
        if !masters.is_empty() {
            let slots = self
                .inner
                .params()
                .iter()
                .map(|p| (format!("master.{}", p.name), p.tensor.shallow_clone()))
                .collect();
            super::restore(slots, masters, origin)?;
        } else {
            tch::no_grad(|| {
                for (p, m) in self.model.iter().zip(self.inner.params()) {
                    let mut m = m.tensor.shallow_clone();
                    m.copy_(p);
                }
            });
        }
        self.push();
        Ok(())
    }

    fn zero_grad(&mut self) {
        super::zero_grad(self.model.iter());
    }
}
