//! Activation checkpointing ("remat", `train.remat`) without custom autograd functions, which
//! tch does not have.
//!
//! Inside [`scope`], a stack of blocks runs each [`segment`] (one or `every` blocks) under
//! `no_grad`, keeping only its input, and continues from its output turned into a leaf that
//! requires grad. After the scope's backward has filled that leaf's gradient, the tape replays
//! the segments in reverse: each is recomputed from its input with a graph and the gradient is
//! pushed through it (`(y · g).sum().backward()`), which fills the gradient of its input — the
//! previous segment's leaf — and of its parameters. Tensors several segments read (T5's position
//! bias, the encoder output the decoder attends to) pass through [`shared`]: a leaf for the
//! segments, whose summed gradient is pushed into the original after all of them.
//!
//! Outside a scope, or when neither a segment's input nor its blocks need a gradient (a frozen
//! tower), segments run plainly, so model code has one path. Every segment names its blocks'
//! [`Unit`]s, so that an installed [`crate::param_hook`] (`parallel.shard: full`) can make their
//! parameters whole just before they run and free them just after, forward and recomputed. Recomputation is deterministic (no dropout is applied
//! in training here), so gradients equal those without remat.

use crate::param_hook::{self, Unit};
use std::cell::RefCell;
use tch::{Kind, Tensor};

/// What the tape replays, newest last.
enum Entry {
    /// Recompute `f(input)` with a graph and push `out`'s gradient through it.
    Segment {
        input: Tensor,
        out: Tensor,
        f: Box<dyn Fn(&Tensor) -> Tensor>,
        /// The device type whose autocast was on when it ran: the recomputation runs under it.
        autocast: Option<tch::Device>,
        /// Its blocks, for the parameter hook.
        units: Vec<Unit>,
    },
    /// Push `leaf`'s gradient into `source`'s graph.
    Shared { source: Tensor, leaf: Tensor },
}

struct Tape {
    every: usize,
    entries: Vec<Entry>,
}

thread_local! {
    static TAPE: RefCell<Option<Tape>> = const { RefCell::new(None) };
}

/// Empties the tape when the scope ends, even by a panic: no recorded closure outlives it.
struct Clear;

impl Drop for Clear {
    fn drop(&mut self) {
        TAPE.with(|t| t.borrow_mut().take());
    }
}

/// Runs `forward` with segments of `every` blocks checkpointed (0: none), then `backward` on
/// its result, then replays the tape so every gradient is complete; returns `forward`'s result.
pub fn scope<T>(every: usize, forward: impl FnOnce() -> T, backward: impl FnOnce(&T)) -> T {
    if every == 0 {
        let out = forward();
        backward(&out);
        return out;
    }
    TAPE.with(|t| {
        let mut t = t.borrow_mut();
        assert!(t.is_none(), "remat scopes do not nest");
        *t = Some(Tape {
            every,
            entries: Vec::new(),
        });
    });
    let _clear = Clear;
    let out = forward();
    backward(&out);
    let entries = TAPE.with(|t| {
        t.borrow_mut()
            .as_mut()
            .map(|t| std::mem::take(&mut t.entries))
            .unwrap_or_default()
    });
    for entry in entries.into_iter().rev() {
        match entry {
            Entry::Segment {
                input,
                out,
                f,
                autocast,
                units,
            } => {
                let g = out.grad();
                if g.defined() {
                    hook(|h| h.before_backward(&units));
                    push(&crate::autocast::bf16(autocast, || f(&input)), &g);
                    hook(|h| h.after_backward(&units));
                }
            }
            Entry::Shared { source, leaf } => {
                let g = leaf.grad();
                if g.defined() {
                    push(&source, &g);
                }
            }
        }
    }
    out
}

/// Back-propagates `g` through `y`'s graph.
fn push(y: &Tensor, g: &Tensor) {
    if y.requires_grad() {
        (y * g.to_kind(y.kind())).sum(Kind::Float).backward();
    }
}

/// Blocks per checkpointed segment in the active scope (1 when none is active: callers group
/// their blocks by it either way).
pub fn segment_len() -> usize {
    TAPE.with(|t| t.borrow().as_ref().map_or(1, |t| t.every))
}

/// `f(blocks, x)`, checkpointed as one segment when a scope is active and `x` or the blocks
/// (`units`, one per block) need a gradient. `f` owns whatever else it reads (shallow clones of
/// masks and biases: `'static`), so that it can run again after the caller's locals are gone.
///
/// # Safety
/// `blocks` must stay alive and unmoved until the enclosing [`scope`] returns (the blocks of a
/// model that outlives the training step), since the replay reads them after `forward` ends.
pub unsafe fn segment<M: ?Sized + 'static>(
    blocks: &M,
    units: &[Unit],
    x: &Tensor,
    f: impl Fn(&M, &Tensor) -> Tensor + 'static,
) -> Tensor {
    let trained = || param_hook::with_current(|h| h.trainable(units)) == Some(true);
    hook(|h| h.before_forward(units));
    if !active() || !(x.requires_grad() || trained()) {
        let y = f(blocks, x);
        // A graph through the parameters needs them until its backward: the hook's owner
        // frees them after the step instead.
        if !y.requires_grad() {
            hook(|h| h.after_forward(units));
        }
        return y;
    }
    let out = tch::no_grad(|| f(blocks, x))
        .detach()
        .set_requires_grad(true);
    hook(|h| h.after_forward(units));
    let blocks = blocks as *const M;
    // SAFETY: the caller keeps `blocks` alive until `scope` returns, and the tape is drained or
    // cleared (the `Clear` guard) before then, so the pointer is only read while valid.
    let f = Box::new(move |x: &Tensor| f(unsafe { &*blocks }, x));
    record(Entry::Segment {
        input: x.shallow_clone(),
        out: out.shallow_clone(),
        f,
        autocast: crate::autocast::current(),
        units: units.to_vec(),
    });
    out
}

/// Tells the installed parameter hook, if any.
fn hook(f: impl FnOnce(&dyn param_hook::ParamHook)) {
    param_hook::with_current(f);
}

/// `t` for several segments to read: inside a scope, a leaf whose gradient reaches `t` after
/// all of them; outside, `t` itself.
pub fn shared(t: &Tensor) -> Tensor {
    if !active() || !t.requires_grad() {
        return t.shallow_clone();
    }
    let leaf = t.detach().set_requires_grad(true);
    record(Entry::Shared {
        source: t.shallow_clone(),
        leaf: leaf.shallow_clone(),
    });
    leaf
}

fn active() -> bool {
    TAPE.with(|t| t.borrow().is_some())
}

fn record(e: Entry) {
    TAPE.with(|t| {
        if let Some(t) = t.borrow_mut().as_mut() {
            t.entries.push(e);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, nn::Module, Device};

    #[test]
    fn segments_and_shared_tensors_give_the_plain_gradients() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let inp = nn::linear(vs.root() / "in", 4, 8, Default::default());
        let blocks: Vec<_> = (0..5)
            .map(|i| nn::linear(vs.root() / i, 8, 8, Default::default()))
            .collect();
        let bias = vs.root().var(
            "bias",
            &[8],
            nn::Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            },
        );
        let x = Tensor::randn([3, 4], (Kind::Float, Device::Cpu));
        let forward = || {
            let b = shared(&(&bias * 2.0));
            let mut h = inp.forward(&x);
            for chunk in blocks.chunks(segment_len()) {
                let b = b.shallow_clone();
                // SAFETY: `blocks` outlives the scope below.
                h = unsafe {
                    segment(chunk, &[], &h, move |chunk, h| {
                        chunk
                            .iter()
                            .fold(h.shallow_clone(), |h, l| (l.forward(&h) + &b).tanh() + &h)
                    })
                };
            }
            h.pow_tensor_scalar(2).mean(Kind::Float)
        };
        let grads = |every: usize| {
            zero_grads(&vs);
            let loss = scope(every, forward, |l| l.backward()).double_value(&[]);
            let mut v: Vec<_> = vs.variables().into_iter().collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            (
                loss,
                v.into_iter()
                    .map(|(_, t)| t.grad().copy())
                    .collect::<Vec<_>>(),
            )
        };
        let (l0, g0) = grads(0);
        for every in [1, 2] {
            let (l, g) = grads(every);
            assert!((l - l0).abs() < 1e-7, "every {every}: loss {l} vs {l0}");
            for (a, b) in g.iter().zip(&g0) {
                let d = (a - b).abs().max().double_value(&[]);
                assert!(d < 1e-6, "every {every}: gradients differ by {d}");
            }
        }
        // Outside a scope nothing is recorded and segments run plainly.
        assert_eq!(segment_len(), 1);
        assert!(!active());
    }

    fn zero_grads(vs: &nn::VarStore) {
        for t in vs.variables().values() {
            let mut g = t.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
    }

    /// Every variable's gradient after `step` runs under remat of `every` (sorted by name).
    fn grads_of(vs: &nn::VarStore, every: usize, step: impl FnOnce() -> Tensor) -> Vec<Tensor> {
        zero_grads(vs);
        let _ = scope(every, step, |l| l.backward());
        let mut v: Vec<_> = vs.variables().into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.into_iter()
            .map(|(n, t)| {
                let g = t.grad();
                assert!(g.defined(), "{n} got no gradient (every {every})");
                g.copy()
            })
            .collect()
    }

    fn assert_same(a: &[Tensor], b: &[Tensor], what: &str) {
        for (x, y) in a.iter().zip(b) {
            let d = (x - y).abs().max().double_value(&[]);
            let scale = y.abs().max().double_value(&[]).max(1e-3);
            assert!(
                d / scale < 1e-4,
                "{what}: gradients differ by {d} (scale {scale})"
            );
        }
    }

    /// `step`'s gradients with segments of 1 and 2 blocks equal the plain ones.
    fn remat_keeps_the_gradients(vs: &nn::VarStore, step: impl Fn() -> Tensor + Copy) {
        let plain = grads_of(vs, 0, step);
        for every in [1, 2] {
            assert_same(
                &grads_of(vs, every, step),
                &plain,
                &format!("every {every}"),
            );
        }
    }

    #[test]
    fn siglip_towers_give_the_same_gradients_with_remat() {
        tch::manual_seed(0);
        let spec = |p: &str| crate::siglip::TowerSpec {
            preset: Some(p.into()),
            ..Default::default()
        };
        let mut v = spec("mu");
        v.image_size = Some(16);
        v.patch_size = Some(4);
        let cfg = crate::SiglipConfig::from_specs(&v, &spec("mu"), 50).unwrap();
        let m = crate::SiglipModel::new(&cfg, Device::Cpu).unwrap();
        let pixels = Tensor::rand([4, 3, 16, 16], (Kind::Float, Device::Cpu));
        let len = cfg.text_config.max_position_embeddings as i64;
        let ids = Tensor::randint(50, [4, len], (Kind::Int64, Device::Cpu));
        let step = || m.loss(&pixels, &ids).unwrap();
        remat_keeps_the_gradients(&m.vs, step);
    }

    #[test]
    fn pali_vit_and_t5_give_the_same_gradients_with_remat() {
        tch::manual_seed(0);
        let cfg = crate::pali::PaliConfig::preset("mu", 64).unwrap();
        let m = crate::pali::PaliModel::new(&cfg, Device::Cpu).unwrap();
        let s = cfg.vision_config.image_size as i64;
        let pixels = Tensor::rand([3, 3, s, s], (Kind::Float, Device::Cpu));
        let ids = Tensor::randint_low(2, 64, [3, 5], (Kind::Int64, Device::Cpu));
        let mask =
            Tensor::from_slice(&[1i64, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0]).view([3, 5]);
        let labels = Tensor::randint_low(2, 64, [3, 4], (Kind::Int64, Device::Cpu));
        let step = || m.loss(&pixels, &ids, &mask, &labels, 0.1).unwrap();
        // The ViT trains too (stage 2), so every block of all three stacks is checkpointed.
        remat_keeps_the_gradients(&m.vs, step);
    }
}
