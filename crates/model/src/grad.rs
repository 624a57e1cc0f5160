//! Dropping or replacing a tensor's gradient, which tch cannot do (it only zeroes one): a C++
//! shim.

use tch::Tensor;

extern "C" {
    fn palisade_grad_reset(t: *const std::ffi::c_void);
    fn palisade_grad_set(t: *const std::ffi::c_void, g: *const std::ffi::c_void);
}

/// Leaves `t` without a gradient, freeing the one it had (`t.grad()` is undefined after).
pub fn reset(t: &Tensor) {
    // SAFETY: `as_ptr` is the live at::Tensor behind `t` (tch's C_tensor); the shim only
    // resets its grad, which libtorch allows on any tensor.
    unsafe { palisade_grad_reset(t.as_ptr().cast()) }
}

/// Makes `g` the gradient of `t` (same shape, kind and device), replacing any it had.
pub fn set(t: &Tensor, g: &Tensor) {
    assert_eq!(t.size(), g.size(), "a gradient has its tensor's shape");
    // SAFETY: both pointers are live at::Tensors (tch's C_tensor); the shim copies the handle.
    unsafe { palisade_grad_set(t.as_ptr().cast(), g.as_ptr().cast()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_gradient_is_gone_and_the_next_backward_starts_fresh() {
        let x = Tensor::ones([3], (tch::Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
        (&x * 2.0).sum(tch::Kind::Float).backward();
        assert!(x.grad().defined());
        reset(&x);
        assert!(!x.grad().defined());
        (&x * 3.0).sum(tch::Kind::Float).backward();
        assert_eq!(Vec::<f32>::try_from(x.grad()).unwrap(), vec![3.0; 3]);
        set(&x, &Tensor::from_slice(&[1.0f32, 2.0, 3.0]));
        (&x * 3.0).sum(tch::Kind::Float).backward();
        assert_eq!(Vec::<f32>::try_from(x.grad()).unwrap(), vec![4.0, 5.0, 6.0]);
    }
}
