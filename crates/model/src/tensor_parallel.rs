//! The seams of Megatron-style tensor parallelism in the model code. Blocks call [`enter`]
//! before their column-parallel projections (q/k/v, MLP in) and [`row_linear`] for their
//! row-parallel ones (attention out, MLP out); attention counts its heads from the projection
//! it holds. With no group installed (one device, evaluation, tests) these are the plain
//! operations; the parallelism layer slices the weights and installs the group with
//! [`scope`] around a training step's forward and backward.
//!
//! The sums are autograd functions written in C++ (cpp/tensor_parallel.cpp), since tch has
//! no custom autograd functions; they call back into Rust for the collective.

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_void, CStr};
use std::sync::Once;
use tch::{nn, Tensor};

/// The tensor-parallel group as the model sees it: its size and an in-place sum.
pub trait TpComm {
    /// Ranks in the group.
    fn size(&self) -> usize;
    /// Sums `t` in place over the group.
    fn sum_(&self, t: &mut Tensor) -> Result<(), String>;
}

extern "C" {
    fn palisade_tp_set_sum(f: extern "C" fn(*mut c_void) -> bool);
    fn palisade_tp_apply(x: *const c_void, which: i32, out: *mut *mut c_void) -> *mut c_char;
    fn palisade_free_error(e: *mut c_char);
}

thread_local! {
    /// The installed group. Per thread: on the CPU autograd runs backward on the thread that
    /// called it (on CUDA it has its own threads, which tensor parallelism does not cover yet).
    static ACTIVE: Cell<Option<*const dyn TpComm>> = const { Cell::new(None) };
    /// The first collective failure inside the scope, reported when it ends.
    static FAILED: RefCell<Option<String>> = const { RefCell::new(None) };
}
static CALLBACK: Once = Once::new();

extern "C" fn sum_callback(t: *mut c_void) -> bool {
    let run = || -> Result<(), String> {
        let comm = ACTIVE
            .get()
            .ok_or("a tensor-parallel sum ran outside its training step's thread and scope")?;
        // SAFETY: the shim passes a live at::Tensor; clone_from_ptr takes a new handle to it.
        let mut t = unsafe { Tensor::clone_from_ptr(t.cast()) };
        // SAFETY: ACTIVE holds the scope's borrowed group only while the scope runs.
        unsafe { &*comm }.sum_(&mut t)
    };
    match std::panic::catch_unwind(run) {
        Ok(Ok(())) => true,
        Ok(Err(e)) => record(e),
        Err(_) => record("a tensor-parallel sum panicked".into()),
    }
}

fn record(e: String) -> bool {
    FAILED.with_borrow_mut(|f| {
        f.get_or_insert(e);
    });
    false
}

/// Clears the installed group when the scope ends, however it ends.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        ACTIVE.set(None);
    }
}

/// Runs `f` with `comm` as the tensor-parallel group; the first failed collective inside it
/// (forward or backward) comes back as the error. Scopes do not nest.
pub fn scope<T>(comm: &dyn TpComm, f: impl FnOnce() -> T) -> Result<T, String> {
    // SAFETY: the callback is a plain extern "C" function; set once.
    CALLBACK.call_once(|| unsafe { palisade_tp_set_sum(sum_callback) });
    assert!(ACTIVE.get().is_none(), "tensor-parallel scopes do not nest");
    // SAFETY (of the lifetime's erasure): `Installed` clears the pointer before this function
    // returns, so nothing reads it after `comm`'s borrow ends.
    let erased: *const (dyn TpComm + '_) = comm;
    ACTIVE.set(Some(unsafe {
        std::mem::transmute::<*const (dyn TpComm + '_), *const dyn TpComm>(erased)
    }));
    let installed = Installed;
    let out = f();
    drop(installed);
    match FAILED.take() {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// The installed group's size (1 when none is).
pub fn size() -> usize {
    // SAFETY: ACTIVE holds the scope's borrowed group only while the scope runs.
    ACTIVE.get().map_or(1, |c| unsafe { &*c }.size())
}

fn apply(x: &Tensor, which: i32) -> Tensor {
    let mut out: *mut c_void = std::ptr::null_mut();
    // SAFETY: `x` is a live at::Tensor; on success the shim hands over a new heap at::Tensor.
    let err = unsafe { palisade_tp_apply(x.as_ptr().cast(), which, &mut out) };
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
/// the group in backward (each rank's slice contributes part of it).
pub fn enter(x: &Tensor) -> Tensor {
    if size() == 1 {
        x.shallow_clone()
    } else {
        apply(x, 0)
    }
}

/// Partial sums out of a row-parallel layer, summed over the group; the gradient passes
/// through unchanged.
pub fn exit(x: &Tensor) -> Tensor {
    if size() == 1 {
        x.shallow_clone()
    } else {
        apply(x, 1)
    }
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
        fn sum_(&self, t: &mut Tensor) -> Result<(), String> {
            let _ = t.g_mul_scalar_(2.0);
            Ok(())
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

    struct Failing;

    impl TpComm for Failing {
        fn size(&self) -> usize {
            2
        }
        fn sum_(&self, _t: &mut Tensor) -> Result<(), String> {
            Err("rank 1 is gone".into())
        }
    }

    #[test]
    fn a_failed_sum_is_the_scopes_error() {
        let x = Tensor::ones([2], (Kind::Float, Device::Cpu));
        let err = scope(&Failing, || exit(&x)).unwrap_err();
        assert_eq!(err, "rank 1 is gone");
    }
}
