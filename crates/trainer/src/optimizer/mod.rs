//! Optimisers as big_vision trains SigLIP and PaLI: AdamW and Adafactor, over named parameters
//! with per-parameter learning-rate multipliers, global-norm gradient clipping, and state that
//! goes into checkpoints (tch's own optimisers cannot export theirs).

mod adafactor;
mod adamw;
mod master;

pub use adafactor::{Adafactor, AdafactorConfig};
pub use adamw::{AdamW, AdamWConfig};
pub use master::{masters, MasterWeights};

use crate::error::{Result, TrainerError};
use std::path::Path;
use tch::Tensor;

/// A trainable parameter as an optimiser sees it.
#[derive(Debug)]
pub struct Param {
    /// Its name in the model folder.
    pub name: String,
    /// The tensor (requires grad).
    pub tensor: Tensor,
    /// Weight decay applies (matrices; not biases, norms, scalars, embeddings or probes).
    pub decay: bool,
    /// Its learning rate as a multiple of the schedule's (`train.lr_mults`).
    pub lr_mult: f64,
}

impl Param {
    /// Named tensors as parameters, sorted by name for a stable order, multiplier 1.
    pub fn sorted(mut params: Vec<(String, Tensor)>) -> Vec<Param> {
        params.sort_by(|a, b| a.0.cmp(&b.0));
        params
            .into_iter()
            .map(|(name, tensor)| Param {
                decay: tensor.dim() >= 2 && !name.contains("embedding") && !name.ends_with("probe"),
                name,
                tensor,
                lr_mult: 1.0,
            })
            .collect()
    }
}

/// What the train loop does with an optimiser.
pub trait Optimizer {
    /// The parameters it updates.
    fn params(&self) -> &[Param];
    /// The same, to set learning-rate multipliers.
    fn params_mut(&mut self) -> &mut [Param];
    /// Applies one update with the schedule's learning rate `lr`.
    fn step(&mut self, lr: f64);
    /// Its state as named tensors for checkpoints.
    fn state_tensors(&self) -> Vec<(String, Tensor)>;
    /// Restores state written by [`Optimizer::state_tensors`] after `step` updates.
    fn load_state(
        &mut self,
        tensors: Vec<(String, Tensor)>,
        step: u64,
        origin: &Path,
    ) -> Result<()>;

    /// Global L2 norm of its parameters' gradients (absent gradients count as zero).
    fn grad_norm(&self) -> f64 {
        grad_norm(self.params().iter().map(|p| &p.tensor))
    }

    /// Scales its parameters' gradients so their global norm is at most `max_norm`; returns
    /// the norm before.
    fn clip_grad_norm(&self, max_norm: f64) -> f64 {
        clip_grad_norm(self.params().iter().map(|p| &p.tensor), max_norm)
    }

    /// Clears its parameters' gradients.
    fn zero_grad(&mut self) {
        zero_grad(self.params().iter().map(|p| &p.tensor));
    }
}

/// Global L2 norm of the gradients of `params` (absent gradients count as zero).
pub fn grad_norm<'a>(params: impl IntoIterator<Item = &'a Tensor>) -> f64 {
    palisade_model::fused::norm(&grads(params))
}

/// The defined gradients of `params`.
fn grads<'a>(params: impl IntoIterator<Item = &'a Tensor>) -> Vec<Tensor> {
    params
        .into_iter()
        .map(Tensor::grad)
        .filter(Tensor::defined)
        .collect()
}

/// Scales the gradients of `params` so their global norm is at most `max_norm` (0: no clip);
/// returns the norm before.
pub fn clip_grad_norm<'a>(
    params: impl IntoIterator<Item = &'a Tensor> + Clone,
    max_norm: f64,
) -> f64 {
    let norm = grad_norm(params.clone());
    clip_to(params, norm, max_norm);
    norm
}

/// Scales the gradients of `params`, whose global norm is `norm`, down to `max_norm` when they
/// exceed it (0: no clip).
pub fn clip_to<'a>(params: impl IntoIterator<Item = &'a Tensor>, norm: f64, max_norm: f64) {
    if max_norm > 0.0 && norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        tch::no_grad(|| palisade_model::fused::mul_(&grads(params), scale));
    }
}

/// Clears the gradients of `params`.
pub fn zero_grad<'a>(params: impl IntoIterator<Item = &'a Tensor>) {
    for p in params {
        let mut g = p.grad();
        if g.defined() {
            let _ = g.detach_();
            let _ = g.zero_();
        }
    }
}

/// Which optimiser, with what (`train.optimizer`, `train.adafactor`, Adam's keys).
#[derive(Debug, Clone, Copy)]
pub struct Choice<'a> {
    /// `adamw` or `adafactor`.
    pub name: &'a str,
    /// AdamW's hyper-parameters (its weight decay serves Adafactor too).
    pub adamw: AdamWConfig,
    /// Adafactor's.
    pub adafactor: AdafactorConfig,
}

/// The optimiser `choice` names over `params` (this rank's share of the trainable parameters
/// `all_names`), with the `lr_mults` patterns applied (the first matching pattern wins; a
/// pattern that matches no trainable parameter is refused).
pub fn build(
    choice: Choice,
    lr_mults: &std::collections::BTreeMap<String, f64>,
    params: Vec<(String, Tensor)>,
    all_names: &[String],
) -> Result<Box<dyn Optimizer>> {
    let mut opt: Box<dyn Optimizer> = match choice.name {
        "adamw" => Box::new(AdamW::new(params, choice.adamw)),
        "adafactor" => Box::new(Adafactor::new(
            params,
            choice.adafactor,
            choice.adamw.weight_decay,
        )),
        other => {
            return Err(TrainerError::Config(format!(
                "key train.optimizer: {other:?} is not adamw or adafactor"
            )))
        }
    };
    let patterns = compile(lr_mults, "train.lr_mults")?;
    for (re, _) in &patterns {
        if !all_names.iter().any(|n| re.is_match(n)) {
            return Err(TrainerError::Config(format!(
                "key train.lr_mults: {:?} matches no trainable parameter",
                re.as_str()
            )));
        }
    }
    for p in opt.params_mut() {
        if let Some((_, m)) = patterns.iter().find(|(re, _)| re.is_match(&p.name)) {
            p.lr_mult = *m;
        }
    }
    Ok(opt)
}

/// Copies checkpointed `tensors` into `slots` (name → destination; a shallow clone shares
/// its storage), each by name and shape; a missing, misshapen or unclaimed tensor is refused
/// naming it and `origin`.
pub(crate) fn restore(
    slots: Vec<(String, Tensor)>,
    tensors: Vec<(String, Tensor)>,
    origin: &Path,
) -> Result<()> {
    let mut map: std::collections::HashMap<String, Tensor> = tensors.into_iter().collect();
    let bad = |msg: String| TrainerError::Checkpoint {
        path: origin.to_path_buf(),
        msg,
    };
    tch::no_grad(|| {
        for (key, mut dst) in slots {
            let t = map
                .remove(&key)
                .ok_or_else(|| bad(format!("tensor {key} is missing")))?;
            if t.size() != dst.size() {
                return Err(bad(format!(
                    "tensor {key}: shape {:?}, expected {:?}",
                    t.size(),
                    dst.size()
                )));
            }
            dst.f_copy_(&t)?;
        }
        Ok(())
    })?;
    match map.keys().next() {
        Some(extra) => Err(bad(format!(
            "tensor {extra} matches no trainable parameter"
        ))),
        None => Ok(()),
    }
}

/// Whole-name regular expressions (`vision_model\..*`) with their values.
pub fn compile<V: Copy>(
    pats: &std::collections::BTreeMap<String, V>,
    key: &str,
) -> Result<Vec<(regex::Regex, V)>> {
    pats.iter()
        .map(|(p, v)| {
            regex::Regex::new(&format!("^(?:{p})$"))
                .map(|re| (re, *v))
                .map_err(|e| {
                    TrainerError::Config(format!(
                        "key {key}: {p:?} is not a regular expression: {e}"
                    ))
                })
        })
        .collect()
}

/// Freezes every variable of `vs` whose name matches one of `train.freeze`; returns how many.
pub fn freeze(vs: &tch::nn::VarStore, patterns: &[String]) -> Result<usize> {
    let map: std::collections::BTreeMap<String, ()> =
        patterns.iter().map(|p| (p.clone(), ())).collect();
    let res = compile(&map, "train.freeze")?;
    let mut n = 0;
    for (re, ()) in &res {
        let hits: Vec<_> = vs
            .variables()
            .into_iter()
            .filter(|(name, _)| re.is_match(name))
            .collect();
        if hits.is_empty() {
            return Err(TrainerError::Config(format!(
                "key train.freeze: {:?} matches no parameter",
                re.as_str()
            )));
        }
        for (_, t) in hits {
            let _ = t.set_requires_grad(false);
            n += 1;
        }
    }
    Ok(n)
}
