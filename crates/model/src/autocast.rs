//! Mixed precision: libtorch autocast with bfloat16 on CUDA (tch alone would give float16).

use std::sync::Once;

extern "C" {
    fn palisade_set_autocast_cuda_bf16() -> i32;
    fn palisade_autocast_cuda_enabled() -> i32;
}

/// Whether CUDA autocast is on in this thread (inside [`bf16`] on CUDA).
pub fn enabled() -> bool {
    // SAFETY: a plain getter of libtorch's thread-local autocast state.
    unsafe { palisade_autocast_cuda_enabled() != 0 }
}

static BF16: Once = Once::new();

/// Runs `f` under autocast when `enabled` (CUDA), with bfloat16 as the autocast dtype.
pub fn bf16<T>(enabled: bool, f: impl FnOnce() -> T) -> T {
    if !enabled {
        return f();
    }
    // SAFETY: a plain setter of a global in libtorch, with no arguments or ownership involved.
    BF16.call_once(|| unsafe {
        palisade_set_autocast_cuda_bf16();
    });
    tch::autocast(true, f)
}

#[cfg(test)]
mod tests {
    #[test]
    fn shim_sets_bf16() {
        // SAFETY: as above.
        assert_eq!(unsafe { super::palisade_set_autocast_cuda_bf16() }, 1);
    }
}
