//! An exponential moving average of the weights (`train.ema_decay`): after every update each
//! floating-point variable's shadow moves to `decay · shadow + (1 − decay) · weight`. The
//! shadow is saved beside the raw weights (`ema.safetensors` in each checkpoint, restored on
//! resume) and evaluated too, by swapping it into the model for the evaluation.

use crate::error::Result;
use std::path::Path;
use tch::{nn, Kind, Tensor};

/// The shadow weights inside a checkpoint folder.
pub const EMA_FILE: &str = "ema.safetensors";

/// The moving average of a model's variables.
#[derive(Debug)]
pub struct Ema {
    decay: f64,
    /// (name, variable, shadow), sorted by name.
    slots: Vec<(String, Tensor, Tensor)>,
}

impl Ema {
    /// Starts the average at the current weights of `vs`.
    pub fn new(vs: &nn::VarStore, decay: f64) -> Ema {
        let mut vars: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.is_floating_point())
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let slots = vars
            .into_iter()
            .map(|(n, t)| {
                let shadow = t.detach().to_kind(Kind::Float).copy();
                (n, t, shadow)
            })
            .collect();
        Ema { decay, slots }
    }

    /// Moves the average one step towards the current weights.
    pub fn update(&mut self) {
        let d = self.decay;
        tch::no_grad(|| {
            for (_, var, shadow) in &mut self.slots {
                let _ = shadow
                    .g_mul_scalar_(d)
                    .g_add_(&(var.to_kind(Kind::Float) * (1.0 - d)));
            }
        });
    }

    /// The shadow as named tensors (the model's own names) for checkpoints.
    pub fn tensors(&self) -> Vec<(String, Tensor)> {
        self.slots
            .iter()
            .map(|(n, _, s)| (n.clone(), s.to_device(tch::Device::Cpu).contiguous()))
            .collect()
    }

    /// Restores a shadow written by [`Ema::tensors`].
    pub fn load(&mut self, tensors: Vec<(String, Tensor)>, origin: &Path) -> Result<()> {
        let slots = self
            .slots
            .iter()
            .map(|(n, _, s)| (n.clone(), s.shallow_clone()))
            .collect();
        crate::optimizer::restore(slots, tensors, origin)
    }

    /// Runs `f` with the shadow in place of the weights, then puts the weights back.
    pub fn with_shadow<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let saved: Vec<Tensor> = self
            .slots
            .iter()
            .map(|(_, v, _)| v.detach().copy())
            .collect();
        tch::no_grad(|| {
            for (_, var, shadow) in &self.slots {
                let mut v = var.shallow_clone();
                v.copy_(&shadow.to_kind(var.kind()));
            }
        });
        let out = f();
        tch::no_grad(|| {
            for ((_, var, _), w) in self.slots.iter().zip(saved) {
                let mut v = var.shallow_clone();
                v.copy_(&w);
            }
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shadow_follows_the_weights_and_swaps_in_and_out() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let w = vs.root().zeros("w", &[2]);
        let mut ema = Ema::new(&vs, 0.5);
        tch::no_grad(|| {
            let _ = w.shallow_clone().fill_(4.0);
        });
        ema.update(); // 0.5·0 + 0.5·4 = 2
        ema.update(); // 0.5·2 + 0.5·4 = 3
        let seen = ema
            .with_shadow(|| Ok(Vec::<f32>::try_from(w.detach()).unwrap()))
            .unwrap();
        assert_eq!(seen, vec![3.0, 3.0]);
        assert_eq!(Vec::<f32>::try_from(w.detach()).unwrap(), vec![4.0, 4.0]);
        let saved = ema.tensors();
        let mut again = Ema::new(&vs, 0.5);
        again.load(saved, Path::new("x")).unwrap();
        assert_eq!(
            Vec::<f32>::try_from(&again.tensors()[0].1).unwrap(),
            vec![3.0, 3.0]
        );
    }
}
