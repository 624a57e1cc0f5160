//! `parallel.shard: full` — ZeRO stage 3 / FSDP, partitioned by parameter as the optimizer
//! shards are: each transformer block's parameters live whole on one owner rank (the rank that
//! keeps their optimizer state; frozen ones are dealt out separately) and as empty tensors on
//! the others. Before a block's segment runs forward, and again before it is recomputed in
//! backward, the owners broadcast its parameters; afterwards the other ranks free them. After
//! the recomputed segment's backward its gradients are averaged over the ranks and kept by
//! their owner alone, which updates the parameter. So parameters, gradients and optimizer
//! state all fall as 1/N, plus one segment gathered at a time.
//!
//! The segments are remat's (`train.remat`), which `full` therefore needs: recomputation is
//! what lets a block's parameters go between its forward and its backward (a graph kept
//! through them would pin them). Parameters outside the blocks (embeddings, heads, final norms,
//! T5's position bias in block 0) stay whole on every rank, their optimizer state sharded as
//! with `optimizer`. Checkpoints and evaluations gather every parameter first: the model
//! folder is whole and HF-named (FSDP's "full state dict").
//!
//! With `parallel.tp` the parameters are this rank's tensor-parallel slices, sharded over its
//! data-parallel group (the ranks holding the same slices).
//!
//! Whole parameters rather than flat slices of each block: Adafactor's factored moments need
//! whole matrices, and state named by parameter resumes at any world size and shard mode.

use super::{deal, Mesh, OptimizerShards};
use crate::error::{Result, TrainerError};
use palisade_model::param_hook::{ParamHook, Unit};
use palisade_model::{autocast, grad};
use palisade_sharding::{all_reduce_bucketed, broadcast_bucketed, ProcessGroup, ReduceOp};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use tch::{nn, Tensor};

/// One block parameter: whole on its owner, empty elsewhere while released.
struct Slot {
    name: String,
    param: Tensor,
    shape: Vec<i64>,
    owner: usize,
    trainable: bool,
    /// Freed on the ranks that do not own it (the same answer on every rank).
    released: Cell<bool>,
}

/// The block parameters of a model sharded over the `dp` ranks, and the hook that gathers and
/// frees them around each segment.
pub struct FullShards<'m> {
    group: &'m dyn ProcessGroup,
    slots: Vec<Slot>,
    /// Unit prefix → its slots.
    units: HashMap<String, Vec<usize>>,
    rank: usize,
    bucket_bytes: usize,
    /// Gradients of earlier micro-batches, set aside while a segment's backward runs.
    stash: RefCell<HashMap<usize, Tensor>>,
    /// The first collective that failed inside the hook (which cannot return it).
    error: RefCell<Option<TrainerError>>,
}

impl<'m> FullShards<'m> {
    /// Shards the variables of `vs` that `units` hold over `mesh`'s `dp` ranks: trainable ones
    /// to their owner in `shards`, frozen ones dealt out largest first. Every parameter stays
    /// whole until [`FullShards::release_all`].
    pub fn new(
        vs: &nn::VarStore,
        units: &[Unit],
        shards: &OptimizerShards,
        mesh: &'m Mesh,
        bucket_bytes: usize,
    ) -> Result<FullShards<'m>> {
        let group = mesh.dp();
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let mut slots: Vec<Slot> = Vec::new();
        let mut by_unit = HashMap::new();
        let mut taken: HashMap<String, String> = HashMap::new();
        for u in units {
            let mut held = Vec::new();
            for (name, t) in vars.iter().filter(|(n, _)| u.contains(n)) {
                if let Some(other) = taken.insert(name.clone(), u.prefix().to_string()) {
                    return Err(TrainerError::Config(format!(
                        "parallel.shard: full: {name} is in two blocks ({other} and {})",
                        u.prefix()
                    )));
                }
                held.push(slots.len());
                slots.push(Slot {
                    name: name.clone(),
                    param: t.shallow_clone(),
                    shape: t.size(),
                    owner: 0,
                    trainable: t.requires_grad(),
                    released: Cell::new(false),
                });
            }
            if held.is_empty() {
                return Err(TrainerError::Config(format!(
                    "parallel.shard: full: the block {} holds no variables",
                    u.prefix()
                )));
            }
            by_unit.insert(u.prefix().to_string(), held);
        }
        let frozen: Vec<usize> = (0..slots.len()).filter(|&i| !slots[i].trainable).collect();
        let sizes: Vec<i64> = frozen
            .iter()
            .map(|&i| slots[i].param.numel() as i64)
            .collect();
        for (&i, r) in frozen.iter().zip(deal(&sizes, group.world_size())) {
            slots[i].owner = r;
        }
        for s in slots.iter_mut().filter(|s| s.trainable) {
            s.owner = shards.owner(&s.name).ok_or_else(|| {
                TrainerError::Config(format!("parallel.shard: full: {} has no owner", s.name))
            })?;
        }
        Ok(FullShards {
            group,
            slots,
            units: by_unit,
            rank: group.rank(),
            bucket_bytes,
            stash: RefCell::new(HashMap::new()),
            error: RefCell::new(None),
        })
    }

    /// Whether the variable `name` is a block parameter (gathered on use, never broadcast
    /// after the optimizer step).
    pub fn holds(&self, name: &str) -> bool {
        self.slots.iter().any(|s| s.name == name)
    }

    /// Elements of block parameters this rank keeps, and of all block parameters.
    pub fn kept_elements(&self) -> (i64, i64) {
        let n = |s: &Slot| s.shape.iter().product::<i64>();
        let mine = self.slots.iter().filter(|s| s.owner == self.rank).map(n);
        (mine.sum(), self.slots.iter().map(n).sum())
    }

    /// Frees every block parameter this rank does not own.
    pub fn release_all(&self) {
        self.release((0..self.slots.len()).collect::<Vec<_>>().as_slice());
    }

    /// Makes every block parameter whole on every rank (for a checkpoint or an evaluation).
    pub fn gather_all(&self) -> Result<()> {
        self.gather(&(0..self.slots.len()).collect::<Vec<_>>())
    }

    /// `f` with every parameter whole, released again after (also when `f` fails).
    pub fn gathered<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.gather_all()?;
        let out = f();
        self.release_all();
        out
    }

    /// `f` (a training step's forward and backward) with the hook installed; any parameter a
    /// graph kept gathered is freed after, and a collective that failed inside is returned.
    pub fn during<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let out = palisade_model::param_hook::with_hook(self, f);
        self.release_all();
        if let Some(e) = self.error.borrow_mut().take() {
            return Err(e);
        }
        out
    }

    fn gather(&self, idx: &[usize]) -> Result<()> {
        let todo: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|&i| self.slots[i].released.get())
            .collect();
        if todo.is_empty() {
            return Ok(());
        }
        for &i in &todo {
            let s = &self.slots[i];
            if s.owner != self.rank {
                let p = &s.param;
                s.param
                    .shallow_clone()
                    .set_data(&Tensor::zeros(&s.shape, (p.kind(), p.device())));
            }
        }
        for root in 0..self.group.world_size() {
            let mut ts: Vec<Tensor> = todo
                .iter()
                .filter(|&&i| self.slots[i].owner == root)
                .map(|&i| self.slots[i].param.shallow_clone())
                .collect();
            if !ts.is_empty() {
                tch::no_grad(|| broadcast_bucketed(self.group, &mut ts, root, self.bucket_bytes))?;
            }
        }
        for &i in &todo {
            self.slots[i].released.set(false);
        }
        Ok(())
    }

    fn release(&self, idx: &[usize]) {
        for &i in idx {
            let s = &self.slots[i];
            if s.released.replace(true) || s.owner == self.rank {
                continue;
            }
            let p = &s.param;
            s.param
                .shallow_clone()
                .set_data(&Tensor::empty([0], (p.kind(), p.device())));
        }
    }

    /// Averages the fresh gradients of `idx` over the ranks; the owner adds them to what it
    /// had set aside, the others drop theirs.
    fn reduce(&self, idx: &[usize]) -> Result<()> {
        let trained: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|&i| self.slots[i].trainable && self.slots[i].param.grad().defined())
            .collect();
        let mut grads: Vec<Tensor> = trained
            .iter()
            .map(|&i| self.slots[i].param.grad())
            .collect();
        all_reduce_bucketed(self.group, &mut grads, ReduceOp::Avg, self.bucket_bytes)?;
        let mut stash = self.stash.borrow_mut();
        for (&i, g) in trained.iter().zip(grads) {
            let p = &self.slots[i].param;
            if self.slots[i].owner != self.rank {
                grad::reset(p);
            } else if let Some(old) = stash.remove(&i) {
                grad::set(p, &(g + old));
            }
        }
        // A parameter the pass did not reach keeps what it had.
        for i in idx {
            if let Some(old) = stash.remove(i) {
                grad::set(&self.slots[*i].param, &old);
            }
        }
        Ok(())
    }

    fn indices(&self, units: &[Unit]) -> Vec<usize> {
        let mut out = Vec::new();
        for u in units {
            match self.units.get(u.prefix()) {
                Some(ix) => out.extend_from_slice(ix),
                None => self.fail(TrainerError::Config(format!(
                    "parallel.shard: full: the block {} was not sharded",
                    u.prefix()
                ))),
            }
        }
        out
    }

    fn fail(&self, e: TrainerError) {
        self.error.borrow_mut().get_or_insert(e);
    }

    fn keep(&self, r: Result<()>) {
        if let Err(e) = r {
            self.fail(e);
        }
    }
}

impl ParamHook for FullShards<'_> {
    fn before_forward(&self, units: &[Unit]) {
        let idx = self.indices(units);
        self.keep(self.gather(&idx));
    }

    fn after_forward(&self, units: &[Unit]) {
        // Autocast's bfloat16 copies of the parameters would outlive them otherwise.
        if autocast::current().is_some() {
            autocast::clear_cache();
        }
        self.release(&self.indices(units));
    }

    fn before_backward(&self, units: &[Unit]) {
        let idx = self.indices(units);
        self.keep(self.gather(&idx));
        let mut stash = self.stash.borrow_mut();
        for i in idx {
            let p = &self.slots[i].param;
            let g = p.grad();
            if self.slots[i].owner == self.rank && g.defined() {
                stash.insert(i, g);
                grad::reset(p);
            }
        }
    }

    fn after_backward(&self, units: &[Unit]) {
        let idx = self.indices(units);
        self.keep(self.reduce(&idx));
        self.release(&idx);
    }

    fn trainable(&self, units: &[Unit]) -> bool {
        self.indices(units).iter().any(|&i| self.slots[i].trainable)
    }
}

/// The global L2 norm of the gradients when each rank holds those of the parameters it owns
/// (`owned`; replicated ones counted on their owner alone) and `local_sq` is their squared
/// norm (over the tensor-parallel group with `parallel.tp`), clipped to `max_norm` (0: none)
/// on the owned gradients, the only ones the optimizer reads. Returns the norm before.
pub fn clip_owned_grad_norm(
    group: &dyn ProcessGroup,
    owned: &[Tensor],
    local_sq: f64,
    max_norm: f64,
) -> Result<f64> {
    let mut t = Tensor::from_slice(&[local_sq]);
    group.all_reduce(&mut t, ReduceOp::Sum)?;
    let norm = t.double_value(&[0]).sqrt();
    crate::optimizer::clip_to(owned, norm, max_norm);
    Ok(norm)
}
