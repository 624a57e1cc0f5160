//! The seams of Megatron-style tensor parallelism in the model code. Blocks call [`enter`]
//! before their column-parallel projections (q/k/v, MLP in) and [`row_linear`] for their
//! row-parallel ones (attention out, MLP out); attention counts its heads from the projection
//! it holds. With no group installed (one device, evaluation, tests) these are the plain
//! operations; the parallelism layer slices the weights and installs the group with
//! [`scope`] around a training step's forward and backward, or around an evaluation.
//!
//! The language model's vocabulary is split too: [`vocab_embedding`] looks ids up in this
//! rank's rows of the table, [`vocab_cross_entropy`] takes the loss from each rank's slice of
//! the logits (never gathered whole), and decoding gathers the one position it chooses from
//! with [`vocab_gather`].
//!
//! Sequence parallelism (Megatron's, for the SigLIP towers' blocks): where the installed group
//! asks for it, [`sequence_region`] runs a stack's blocks on this rank's part of the sequence,
//! so residuals and LayerNorms hold 1 / size of the tokens; [`enter`] and [`exit`] then gather
//! and reduce-scatter along the sequence instead of the identity and the sum.
//!
//! The sums are autograd functions written in C++ (cpp/tensor_parallel.cpp), since tch has
//! no custom autograd functions; they call back into Rust for the collective.

use std::cell::Cell;
use std::ffi::{c_char, c_void, CStr};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, Once};
use tch::{nn, Tensor};

/// The tensor-parallel group as the model sees it: its size, this rank's place, an in-place
/// sum and a gather.
pub trait TpComm {
    /// Ranks in the group.
    fn size(&self) -> usize;
    /// This rank's place in the group.
    fn rank(&self) -> usize;
    /// Sums `t` in place over the group.
    fn sum_(&self, t: &mut Tensor) -> Result<(), String>;
    /// Every rank's `t` (same shape everywhere) concatenated along dimension 0 in rank order.
    fn gather(&self, t: &Tensor) -> Result<Tensor, String>;
    /// Whether the blocks' sequences are split too (sequence parallelism, in training).
    fn sequence_parallel(&self) -> bool {
        false
    }
}

extern "C" {
    fn palisade_tp_set_op(f: extern "C" fn(i32, *const c_void, *mut *mut c_void, i64) -> i32);
    fn palisade_tp_apply(
        x: *const c_void,
        fwd: i64,
        bwd: i64,
        scope: i64,
        out: *mut *mut c_void,
    ) -> *mut c_char;
    fn palisade_free_error(e: *mut c_char);
}

/// The group operations the C++ functions run forward and backward (cpp/tensor_parallel.cpp).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i64)]
enum Op {
    Identity = 0,
    Sum = 1,
    /// Every rank's part concatenated along the sequence (dimension 1).
    GatherSequence = 2,
    /// Summed over the group, then this rank's part of the sequence.
    SumScatterSequence = 3,
    /// This rank's part of the sequence.
    SliceSequence = 4,
}

impl Op {
    fn from_code(code: i32) -> Option<Op> {
        [
            Op::Identity,
            Op::Sum,
            Op::GatherSequence,
            Op::SumScatterSequence,
            Op::SliceSequence,
        ]
        .into_iter()
        .find(|o| *o as i32 == code)
    }
}

/// A running scope's group (its lifetime erased: valid while the scope runs) and the first
/// collective failure inside it.
struct Live {
    comm: *const dyn TpComm,
    failed: Option<String>,
}

// SAFETY: the group is used from another thread only by backward, while the scope's own
// thread waits for that backward to finish (CUDA's autograd threads), never at once.
unsafe impl Send for Live {}

/// The running scopes by id: reachable from any thread, so that a backward the autograd
/// engine runs on its own thread (CUDA) still reaches the group its forward was made in.
static LIVE: Mutex<Vec<(i64, Live)>> = Mutex::new(Vec::new());
static NEXT_SCOPE: AtomicI64 = AtomicI64::new(1);

thread_local! {
    /// The scope this thread runs in, for forward (size, rank, gathers, the id each
    /// autograd function keeps).
    static ACTIVE: Cell<Option<(i64, *const dyn TpComm)>> = const { Cell::new(None) };
    /// Inside a sequence-parallel region: activations hold this rank's part of the sequence.
    static IN_REGION: Cell<bool> = const { Cell::new(false) };
}
static CALLBACK: Once = Once::new();

fn live() -> std::sync::MutexGuard<'static, Vec<(i64, Live)>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The group of running scope `id`, if it is still running.
fn comm_of(id: i64) -> Option<*const dyn TpComm> {
    live().iter().find(|(i, _)| *i == id).map(|(_, l)| l.comm)
}

/// This rank's part of `x` along the sequence (dimension 1).
fn sequence_part(x: &Tensor, comm: &dyn TpComm) -> Tensor {
    let len = x.size()[1] / comm.size() as i64;
    x.narrow(1, comm.rank() as i64 * len, len).contiguous()
}

/// `op` on `x` over `comm`, with a stand-in of the right shape when the collective fails.
fn run_op(op: Op, x: &Tensor, comm: &dyn TpComm) -> (Tensor, Option<String>) {
    let summed = |x: &Tensor| {
        let mut t = x.contiguous().copy();
        let failed = comm.sum_(&mut t).err();
        (t, failed)
    };
    match op {
        Op::Identity => (x.shallow_clone(), None),
        Op::Sum => summed(x),
        Op::GatherSequence => {
            let moved = x.movedim(1, 0).contiguous();
            match comm.gather(&moved) {
                Ok(t) => (t.movedim(0, 1).contiguous(), None),
                Err(e) => (x.repeat([1, comm.size() as i64, 1]), Some(e)),
            }
        }
        Op::SumScatterSequence => {
            let (t, failed) = summed(x);
            (sequence_part(&t, comm), failed)
        }
        Op::SliceSequence => (sequence_part(x, comm), None),
    }
}

extern "C" fn op_callback(code: i32, x: *const c_void, out: *mut *mut c_void, scope: i64) -> i32 {
    let Some(comm) = comm_of(scope) else {
        return 2;
    };
    let run = || {
        let op = Op::from_code(code).expect("the shim passes the codes it was given");
        // SAFETY: the shim passes a live at::Tensor; clone_from_ptr takes a new handle to it.
        let x = unsafe { Tensor::clone_from_ptr(x.cast_mut().cast()) };
        // SAFETY: the scope is running (found above), and it cannot end while its own
        // forward or backward is inside this call.
        run_op(op, &x, unsafe { &*comm })
    };
    let (t, failed) = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(r) => r,
        Err(_) => return 2,
    };
    // The shim takes ownership of the heap at::Tensor behind `t` (and deletes it).
    let t = std::mem::ManuallyDrop::new(t);
    // SAFETY: `out` is the shim's slot for the result.
    unsafe { *out = t.as_ptr().cast_mut().cast() };
    match failed {
        None => 0,
        Some(e) => {
            record(scope, e);
            1
        }
    }
}

/// Keeps the first failure of scope `id` for its end.
fn record(id: i64, e: String) {
    if let Some((_, l)) = live().iter_mut().find(|(i, _)| *i == id) {
        l.failed.get_or_insert(e);
    }
}

/// Ends scope `id`: no thread reaches its group after this. Returns its first failure.
fn end(id: i64) -> Option<String> {
    ACTIVE.set(None);
    let mut all = live();
    let at = all.iter().position(|(i, _)| *i == id)?;
    all.swap_remove(at).1.failed
}

/// Ends the scope however `f` ends, a panic included.
struct Installed(i64);

impl Drop for Installed {
    fn drop(&mut self) {
        end(self.0);
    }
}

/// Runs `f` with `comm` as the tensor-parallel group; the first failed collective inside it
/// (forward or backward, on any thread) comes back as the error. Scopes do not nest.
pub fn scope<T>(comm: &dyn TpComm, f: impl FnOnce() -> T) -> Result<T, String> {
    // SAFETY: the callback is a plain extern "C" function; set once.
    CALLBACK.call_once(|| unsafe { palisade_tp_set_op(op_callback) });
    assert!(ACTIVE.get().is_none(), "tensor-parallel scopes do not nest");
    // SAFETY (of the lifetime's erasure): `Installed` removes the pointer from ACTIVE and LIVE
    // before this function returns, so nothing reads it after `comm`'s borrow ends.
    let erased: *const (dyn TpComm + '_) = comm;
    let comm: *const dyn TpComm =
        unsafe { std::mem::transmute::<*const (dyn TpComm + '_), *const dyn TpComm>(erased) };
    let id = NEXT_SCOPE.fetch_add(1, Ordering::Relaxed);
    live().push((id, Live { comm, failed: None }));
    ACTIVE.set(Some((id, comm)));
    let _installed = Installed(id);
    let out = f();
    match end(id) {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// The installed group, if any.
fn active() -> Option<(i64, &'static dyn TpComm)> {
    // SAFETY: ACTIVE holds the scope's borrowed group only while the scope runs, and the
    // reference is not kept past the caller's use inside it.
    ACTIVE.get().map(|(id, c)| (id, unsafe { &*c }))
}

/// The installed group's size (1 when none is).
pub fn size() -> usize {
    active().map_or(1, |(_, c)| c.size())
}

/// This rank's place in the installed group (0 when none is).
pub fn rank() -> usize {
    active().map_or(0, |(_, c)| c.rank())
}

/// Whether the installed group splits the blocks' sequences too (sequence parallelism).
pub fn sequence_parallel() -> bool {
    active().is_some_and(|(_, c)| c.size() > 1 && c.sequence_parallel())
}

/// Every rank's `t` concatenated along dimension 0 (not differentiable). A failure is kept
/// for the scope's end, and `t` repeated stands in for the peers' parts meanwhile.
fn gather(t: &Tensor) -> Tensor {
    let (id, comm) = active().expect("gather inside a tensor-parallel scope");
    comm.gather(&t.contiguous()).unwrap_or_else(|e| {
        record(id, e);
        Tensor::cat(&vec![t; comm.size()], 0)
    })
}

/// `x` through a C++ autograd function running `fwd` forward and `bwd` backward.
fn apply(x: &Tensor, fwd: Op, bwd: Op) -> Tensor {
    let (id, _) = active().expect("a tensor-parallel function inside a scope");
    let mut out: *mut c_void = std::ptr::null_mut();
    // SAFETY: `x` is a live at::Tensor; on success the shim hands over a new heap at::Tensor.
    let err = unsafe { palisade_tp_apply(x.as_ptr().cast(), fwd as i64, bwd as i64, id, &mut out) };
    if !err.is_null() {
        // SAFETY: a strdup'd message, freed once here.
        let msg = unsafe { CStr::from_ptr(err) }
            .to_string_lossy()
            .into_owned();
        unsafe { palisade_free_error(err) };
        panic!("libtorch tensor-parallel function: {msg}");
    }
    // SAFETY: `out` is the new at::Tensor the shim allocated; the Tensor owns it from here.
    unsafe { Tensor::from_ptr(out.cast()) }
}

/// `x` on its way into column-parallel layers: the same forward, its gradient summed over
/// the group in backward (each rank's slice contributes part of it). In a sequence-parallel
/// region the parts of the sequence are gathered first (backward: summed and scattered).
pub fn enter(x: &Tensor) -> Tensor {
    if size() == 1 {
        x.shallow_clone()
    } else if IN_REGION.get() {
        apply(x, Op::GatherSequence, Op::SumScatterSequence)
    } else {
        apply(x, Op::Identity, Op::Sum)
    }
}

/// Partial sums out of a row-parallel layer, summed over the group; the gradient passes
/// through unchanged. In a sequence-parallel region each rank keeps its part of the sum's
/// sequence (backward: the gradient's parts gathered).
pub fn exit(x: &Tensor) -> Tensor {
    if size() == 1 {
        x.shallow_clone()
    } else if IN_REGION.get() {
        apply(x, Op::SumScatterSequence, Op::GatherSequence)
    } else {
        apply(x, Op::Sum, Op::Identity)
    }
}

/// `blocks(x)` as a sequence-parallel region when `on` (see [`sequence_parallel`]; the
/// caller keeps the answer so that a remat segment recomputes as it ran): `x` [B, N, W] enters
/// as this rank's N / size tokens, the blocks run on them (their attention and MLP gather the
/// whole sequence through [`enter`] and keep their part of it through [`exit`]), and the result
/// leaves whole. `on` needs N to divide by the group's size.
pub fn sequence_region(on: bool, x: &Tensor, blocks: impl FnOnce(&Tensor) -> Tensor) -> Tensor {
    if !on {
        return blocks(x);
    }
    let n = x.size()[1];
    assert!(
        n % size() as i64 == 0,
        "a sequence-parallel region of {n} tokens over {} ranks",
        size()
    );
    let part = apply(x, Op::SliceSequence, Op::GatherSequence);
    let y = in_region(true, || blocks(&part));
    apply(&y, Op::GatherSequence, Op::SliceSequence)
}

/// `f` with its activations taken as parts of the sequence (`on`) or whole; what the caller
/// was in is restored after, a panic included. For code that runs again outside its region:
/// a remat segment's recomputation.
pub fn in_region<T>(on: bool, f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            IN_REGION.set(self.0);
        }
    }
    let _restore = Restore(IN_REGION.replace(on));
    f()
}

/// A row-parallel linear layer: this rank's input columns times its slice of the weight,
/// summed over the group, then the (whole) bias once.
pub fn row_linear(x: &Tensor, lin: &nn::Linear) -> Tensor {
    if size() == 1 {
        return x.apply(lin);
    }
    let y = exit(&x.matmul(&lin.ws.tr()));
    match &lin.bs {
        Some(b) => y + b,
        None => y,
    }
}

/// Embeddings of `ids` from a table whose rows (the vocabulary) are split over the group in
/// rank order: each rank looks up the ids in its rows, zeros for the others, and the sum over
/// the group is the whole lookup; the gradient reaches only the rows a rank holds.
pub fn vocab_embedding(ids: &Tensor, table: &Tensor) -> Tensor {
    if size() == 1 {
        return Tensor::embedding(table, ids, -1, false, false);
    }
    let rows = table.size()[0];
    let local = ids - rows * rank() as i64;
    let inside = local.ge(0).logical_and(&local.lt(rows));
    let found = Tensor::embedding(
        table,
        &local.where_self(&inside, &local.zeros_like()),
        -1,
        false,
        false,
    );
    exit(&(found * inside.unsqueeze(-1).to_kind(table.kind())))
}

/// Whole logits [.., V] from this rank's vocabulary slice [.., V / size] (for the one position
/// decoding chooses from; training's loss never gathers them).
pub fn vocab_gather(logits: &Tensor) -> Tensor {
    if size() == 1 {
        return logits.shallow_clone();
    }
    let last = logits.dim() as i64 - 1;
    gather(&logits.movedim(last, 0)).movedim(0, last)
}

/// Mean token cross-entropy of `logits` [N, V] against `labels` [N] (−100 ignored), with
/// label smoothing as libtorch's `cross_entropy`. Inside a scope `logits` is this rank's slice
/// of the vocabulary: the log-partition, the target's logit and (for smoothing) the logits' sum
/// are summed over the group, so each rank's gradient is that of its own slice.
pub fn vocab_cross_entropy(logits: &Tensor, labels: &Tensor, label_smoothing: f64) -> Tensor {
    if size() == 1 {
        return logits.cross_entropy_loss::<Tensor>(
            labels,
            None,
            tch::Reduction::Mean,
            -100,
            label_smoothing,
        );
    }
    let slice = logits.size()[1];
    let vocab = slice * size() as i64;
    // The shift only keeps exp() in range: the loss does not depend on it, so no gradient.
    let local_max = logits.detach().amax([1i64].as_slice(), false);
    let max = gather(&local_max.unsqueeze(0))
        .amax([0i64].as_slice(), false)
        .unsqueeze(1);
    let z = logits - max;
    let log_partition = exit(&z.exp().sum_dim_intlist([1i64].as_slice(), false, z.kind())).log();
    let valid = labels.ne(-100);
    let local = labels - slice * rank() as i64;
    let inside = valid
        .logical_and(&local.ge(0))
        .logical_and(&local.lt(slice));
    let index = local.where_self(&inside, &local.zeros_like()).unsqueeze(1);
    let target = exit(&(z.gather(1, &index, false).squeeze_dim(1) * inside.to_kind(z.kind())));
    let mut per_token = &log_partition - target;
    if label_smoothing > 0.0 {
        // −mean over the vocabulary of log p = log Z − (Σ z) / V.
        let total = exit(&z.sum_dim_intlist([1i64].as_slice(), false, z.kind()));
        let uniform = &log_partition - total / vocab as f64;
        per_token = per_token * (1.0 - label_smoothing) + uniform * label_smoothing;
    }
    let valid = valid.to_kind(z.kind());
    (per_token * &valid).sum(z.kind()) / valid.sum(z.kind())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// A "group" of one rank that doubles what it sums, so each function's direction shows.
    struct Doubling;

    impl TpComm for Doubling {
        fn size(&self) -> usize {
            2
        }
        fn rank(&self) -> usize {
            0
        }
        fn sum_(&self, t: &mut Tensor) -> Result<(), String> {
            let _ = t.g_mul_scalar_(2.0);
            Ok(())
        }
        fn gather(&self, t: &Tensor) -> Result<Tensor, String> {
            Ok(Tensor::cat(&[t, t], 0))
        }
    }

    #[test]
    fn enter_sums_the_gradient_and_exit_the_value() {
        let x = Tensor::from_slice(&[1.0f32, 2.0]).set_requires_grad(true);
        let (y, z) = scope(&Doubling, || {
            let y = enter(&x);
            let z = exit(&(&y * 3.0));
            z.sum(Kind::Float).backward();
            (y, z)
        })
        .unwrap();
        assert_eq!(Vec::<f32>::try_from(y.detach()).unwrap(), vec![1.0, 2.0]);
        assert_eq!(Vec::<f32>::try_from(z.detach()).unwrap(), vec![6.0, 12.0]);
        // d(sum z)/dx = 3 through exit's identity backward, doubled by enter's sum.
        assert_eq!(Vec::<f32>::try_from(x.grad()).unwrap(), vec![6.0, 6.0]);
        assert_eq!(size(), 1, "the group is gone after the scope");
        let plain = Tensor::ones([2], (Kind::Float, Device::Cpu));
        assert_eq!(Vec::<f32>::try_from(exit(&plain)).unwrap(), vec![1.0, 1.0]);
    }

    #[test]
    fn a_backward_on_another_thread_sums_over_the_group_its_forward_was_made_in() {
        // CUDA's autograd engine runs backward on its own device threads, which have no scope.
        let x = Tensor::from_slice(&[1.0f32, 2.0]).set_requires_grad(true);
        scope(&Doubling, || {
            let z = (enter(&x) * 3.0).sum(Kind::Float);
            std::thread::spawn(move || z.backward()).join().unwrap();
        })
        .unwrap();
        assert_eq!(Vec::<f32>::try_from(x.grad()).unwrap(), vec![6.0, 6.0]);
        // A graph kept past its scope cannot reach the group: refused, not a dangling call.
        let y = Tensor::from_slice(&[1.0f32]).set_requires_grad(true);
        let z = scope(&Doubling, || enter(&y).sum(Kind::Float)).unwrap();
        let err = z.f_backward().unwrap_err().to_string();
        assert!(err.contains("after its scope ended"), "{err}");
    }

    struct Failing;

    impl TpComm for Failing {
        fn size(&self) -> usize {
            2
        }
        fn rank(&self) -> usize {
            0
        }
        fn sum_(&self, _t: &mut Tensor) -> Result<(), String> {
            Err("rank 1 is gone".into())
        }
        fn gather(&self, _t: &Tensor) -> Result<Tensor, String> {
            Err("rank 1 is gone".into())
        }
    }

    #[test]
    fn a_failed_sum_is_the_scopes_error() {
        let x = Tensor::ones([2], (Kind::Float, Device::Cpu));
        let err = scope(&Failing, || exit(&x)).unwrap_err();
        assert_eq!(err, "rank 1 is gone");
        // In backward, on another thread too.
        let x = x.set_requires_grad(true);
        let err = scope(&Failing, || {
            let z = enter(&x).sum(Kind::Float);
            std::thread::spawn(move || z.backward()).join().unwrap();
        })
        .unwrap_err();
        assert_eq!(err, "rank 1 is gone");
    }

    /// A group of threads in one process: each rank is a thread with its own scope, and a
    /// collective is an exchange of copies through shared slots (summed in rank order, so every
    /// rank gets the same bits).
    struct Threads {
        rank: usize,
        size: usize,
        slots: std::sync::Arc<(std::sync::Barrier, std::sync::Mutex<Vec<Option<Tensor>>>)>,
    }

    impl Threads {
        fn exchange(&self, t: &Tensor) -> Vec<Tensor> {
            let (barrier, slots) = &*self.slots;
            slots.lock().unwrap()[self.rank] = Some(t.copy());
            barrier.wait();
            let all = slots
                .lock()
                .unwrap()
                .iter()
                .map(|s| s.as_ref().unwrap().copy())
                .collect();
            barrier.wait();
            all
        }
    }

    impl TpComm for Threads {
        fn size(&self) -> usize {
            self.size
        }
        fn rank(&self) -> usize {
            self.rank
        }
        fn sum_(&self, t: &mut Tensor) -> Result<(), String> {
            let all = self.exchange(t);
            let mut total = all[0].copy();
            for p in &all[1..] {
                total += p;
            }
            t.copy_(&total);
            Ok(())
        }
        fn gather(&self, t: &Tensor) -> Result<Tensor, String> {
            Ok(Tensor::cat(&self.exchange(t), 0))
        }
    }

    /// Runs `f(rank)` on `size` threads at once, each inside its own scope (tensors are not
    /// `Sync`: `f` rebuilds its inputs from plain values).
    fn on_threads<T: Send>(size: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
        let slots = std::sync::Arc::new((
            std::sync::Barrier::new(size),
            std::sync::Mutex::new((0..size).map(|_| None).collect()),
        ));
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..size)
                .map(|rank| {
                    let (slots, f) = (slots.clone(), &f);
                    s.spawn(move || {
                        let g = Threads { rank, size, slots };
                        scope(&g, || f(rank)).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    fn values(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()
    }

    fn close(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    #[test]
    fn the_loss_from_vocabulary_slices_equals_the_whole_one_and_so_do_its_gradients() {
        tch::manual_seed(0);
        let logits = Tensor::randn([6, 8], (Kind::Float, Device::Cpu)) * 4.0;
        let labels = Tensor::from_slice(&[3i64, -100, 7, 0, 4, -100]);
        for smoothing in [0.0, 0.1] {
            let whole = logits.copy().set_requires_grad(true);
            let want = vocab_cross_entropy(&whole, &labels, smoothing);
            want.backward();
            let want_grad = whole.grad();
            let (l, y) = (values(&logits), Vec::<i64>::try_from(&labels).unwrap());
            for size in [2usize, 4] {
                let got = on_threads(size, |rank| {
                    let w = 8 / size as i64;
                    let l = Tensor::from_slice(&l).view([6, 8]);
                    let part = l
                        .narrow(1, rank as i64 * w, w)
                        .copy()
                        .set_requires_grad(true);
                    let loss = vocab_cross_entropy(&part, &Tensor::from_slice(&y), smoothing);
                    loss.backward();
                    (loss.detach(), part.grad())
                });
                let grads: Vec<Tensor> = got.iter().map(|(_, g)| g.shallow_clone()).collect();
                for (loss, _) in &got {
                    assert!(
                        close(loss, &want) < 1e-6,
                        "tp {size}, smoothing {smoothing}"
                    );
                }
                let grad = Tensor::cat(&grads, 1);
                assert!(close(&grad, &want_grad) < 1e-6, "tp {size}: gradient");
            }
        }
    }

    #[test]
    fn lookups_in_split_tables_and_gathered_logits_equal_the_whole_ones() {
        tch::manual_seed(0);
        let table = Tensor::randn([8, 3], (Kind::Float, Device::Cpu));
        let ids = Tensor::from_slice(&[7i64, 0, 3, 3, 5, 4]).view([2, 3]);
        let whole = table.copy().set_requires_grad(true);
        let want = vocab_embedding(&ids, &whole);
        (&want * &want).sum(Kind::Float).backward();
        let want_grad = whole.grad();
        let (t, i) = (
            values(&table),
            Vec::<i64>::try_from(ids.flatten(0, -1)).unwrap(),
        );
        let got = on_threads(2, |rank| {
            let (t, i) = (
                Tensor::from_slice(&t).view([8, 3]),
                Tensor::from_slice(&i).view([2, 3]),
            );
            let part = t
                .narrow(0, rank as i64 * 4, 4)
                .copy()
                .set_requires_grad(true);
            let e = vocab_embedding(&i, &part);
            (&e * &e).sum(Kind::Float).backward();
            // Each rank's half of [3, 8] "logits", gathered whole.
            let logits = t.view([3, 8]).narrow(1, rank as i64 * 4, 4);
            (e.detach(), part.grad(), vocab_gather(&logits))
        });
        for (e, _, logits) in &got {
            assert!(close(e, &want) < 1e-7);
            assert!(logits.equal(&table.view([3, 8])));
        }
        let grad = Tensor::cat(&[&got[0].1, &got[1].1], 0);
        assert!(
            close(&grad, &want_grad) < 1e-6,
            "only the held rows' gradients, summed"
        );
    }
}
