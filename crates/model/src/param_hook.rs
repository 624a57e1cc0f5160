//! Where the parallelism layer makes the parameters of a stack's blocks whole and frees them
//! again (`parallel.shard: full`), without the model code knowing how.
//!
//! Every stack names each of its blocks as a [`Unit`] (the variables under the block's path,
//! less any it reads outside its segment, such as T5's position bias in block 0). A
//! [`crate::remat::segment`] tells the installed [`ParamHook`] before and after its blocks run,
//! and before and after their recomputation in backward; with no hook installed (one device,
//! evaluation, tests) nothing happens.

use std::cell::Cell;
use tch::nn;

/// The variables of one block: those named under `prefix`, less those under `except`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    prefix: String,
    except: Vec<String>,
}

impl Unit {
    /// The variables under the var-store path `p`.
    pub fn at(p: &nn::Path) -> Unit {
        Unit {
            prefix: dotted(p),
            except: Vec::new(),
        }
    }

    /// The same, less the variables under `p` (read outside the block's segment).
    pub fn except(mut self, p: &nn::Path) -> Unit {
        self.except.push(dotted(p));
        self
    }

    /// The unit's path, dotted.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether the variable `name` belongs to the unit.
    pub fn contains(&self, name: &str) -> bool {
        let under = |p: &str| name.strip_prefix(p).is_some_and(|r| r.starts_with('.'));
        under(&self.prefix) && !self.except.iter().any(|e| under(e))
    }
}

fn dotted(p: &nn::Path) -> String {
    p.components().collect::<Vec<_>>().join(".")
}

/// What the parallelism layer does around a segment's blocks.
pub trait ParamHook {
    /// Before `units` run forward: their parameters must be whole.
    fn before_forward(&self, units: &[Unit]);
    /// After a forward that kept no graph through them: they may be freed.
    fn after_forward(&self, units: &[Unit]);
    /// Before `units` are recomputed and back-propagated: whole again, and any gradient
    /// accumulated so far (earlier micro-batches) set aside.
    fn before_backward(&self, units: &[Unit]);
    /// After their backward: their gradients are complete for this pass; reduce and free.
    fn after_backward(&self, units: &[Unit]);
    /// Whether any parameter of `units` is trained (a segment whose input needs no gradient
    /// is still checkpointed when it is).
    fn trainable(&self, units: &[Unit]) -> bool;
}

thread_local! {
    static HOOK: Cell<Option<*const (dyn ParamHook + 'static)>> = const { Cell::new(None) };
}

/// Restores the previous hook when `with_hook` ends, even by a panic.
struct Restore(Option<*const (dyn ParamHook + 'static)>);

impl Drop for Restore {
    fn drop(&mut self) {
        HOOK.with(|h| h.set(self.0));
    }
}

/// Runs `f` with `hook` told about every segment that runs on this thread.
pub fn with_hook<T>(hook: &dyn ParamHook, f: impl FnOnce() -> T) -> T {
    // SAFETY: only the lifetime is erased; the pointer is cleared (by `Restore`) before
    // `with_hook` returns, so it is never read after `hook`'s borrow ends.
    let ptr: *const (dyn ParamHook + 'static) = unsafe { std::mem::transmute(hook) };
    let _restore = Restore(HOOK.with(|h| h.replace(Some(ptr))));
    f()
}

/// Calls `f` with the installed hook, if any.
pub(crate) fn with_current<T>(f: impl FnOnce(&dyn ParamHook) -> T) -> Option<T> {
    // SAFETY: a stored pointer is valid while its `with_hook` runs (see there).
    HOOK.with(|h| h.get()).map(|p| f(unsafe { &*p }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_holds_the_variables_under_its_path_less_its_exceptions() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let b = vs.root() / "encoder" / "block" / 1;
        let u = Unit::at(&b).except(&(&b / "layer" / 0 / "bias"));
        assert_eq!(u.prefix(), "encoder.block.1");
        assert!(u.contains("encoder.block.1.layer.0.q.weight"));
        assert!(!u.contains("encoder.block.10.layer.0.q.weight"));
        assert!(!u.contains("encoder.block.1.layer.0.bias.weight"));
        assert!(!u.contains("encoder.block.1"));
        assert!(with_current(|_| ()).is_none());
    }
}
