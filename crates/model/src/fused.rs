//! libtorch's multi-tensor kernels that tch does not expose (a C++ shim): the fused AdamW
//! update, the norm of a list of tensors and an in-place scale of one. Each is one call over
//! the whole list, where a per-tensor loop launches several small kernels per tensor.

use std::ffi::{c_char, c_void, CStr};
use tch::Tensor;

extern "C" {
    fn palisade_free_error(e: *mut c_char);
    fn palisade_fused_adamw(
        params: *const *const c_void,
        grads: *const *const c_void,
        exp_avgs: *const *const c_void,
        exp_avg_sqs: *const *const c_void,
        n: usize,
        step: *const c_void,
        lr: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        eps: f64,
    ) -> *mut c_char;
    fn palisade_foreach_norm(ts: *const *const c_void, n: usize, out: *mut f64) -> *mut c_char;
    fn palisade_foreach_mul(ts: *const *const c_void, n: usize, scale: f64) -> *mut c_char;
}

/// AdamW's hyper-parameters for one fused update.
#[derive(Debug, Clone, Copy)]
pub struct AdamWStep {
    /// Learning rate.
    pub lr: f64,
    /// β₁ and β₂.
    pub betas: [f64; 2],
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// ε added to the denominator.
    pub eps: f64,
    /// The update's number, from 1 (bias correction).
    pub step: u64,
}

/// The at::Tensor handles behind `ts` (tch's C_tensor is an at::Tensor*).
fn handles(ts: &[Tensor]) -> Vec<*const c_void> {
    ts.iter().map(|t| t.as_ptr().cast()).collect()
}

/// Turns a shim's error message into a panic naming `what`, as tch's own operators do.
fn check(what: &str, err: *mut c_char) {
    if err.is_null() {
        return;
    }
    // SAFETY: a non-null return is a strdup'd C string the shim hands over; freed once here.
    let msg = unsafe { CStr::from_ptr(err) }
        .to_string_lossy()
        .into_owned();
    unsafe { palisade_free_error(err) };
    panic!("libtorch {what}: {msg}");
}

/// One AdamW step in place over `params` with their gradients and moments (all on one device,
/// one kind each list; equal lengths): PyTorch's `AdamW(fused=True)` kernel.
pub fn adamw_(
    params: &[Tensor],
    grads: &[Tensor],
    exp_avgs: &[Tensor],
    exp_avg_sqs: &[Tensor],
    a: AdamWStep,
) {
    let n = params.len();
    assert!(
        grads.len() == n && exp_avgs.len() == n && exp_avg_sqs.len() == n,
        "fused AdamW takes one gradient and two moments per parameter"
    );
    if n == 0 {
        return;
    }
    let step = Tensor::from(a.step as f32).to_device(params[0].device());
    let (p, g, m, v) = (
        handles(params),
        handles(grads),
        handles(exp_avgs),
        handles(exp_avg_sqs),
    );
    // SAFETY: every pointer is a live at::Tensor held by the slices (and `step`) for the call.
    let err = unsafe {
        palisade_fused_adamw(
            p.as_ptr(),
            g.as_ptr(),
            m.as_ptr(),
            v.as_ptr(),
            n,
            step.as_ptr().cast(),
            a.lr,
            a.betas[0],
            a.betas[1],
            a.weight_decay,
            a.eps,
        )
    };
    check("fused AdamW", err);
}

/// The L2 norm of `ts` taken together, accumulated in float32 (0 for none).
pub fn norm(ts: &[Tensor]) -> f64 {
    if ts.is_empty() {
        return 0.0;
    }
    let h = handles(ts);
    let mut out = 0.0;
    // SAFETY: live at::Tensors for the call; `out` is a valid f64 to write.
    let err = unsafe { palisade_foreach_norm(h.as_ptr(), h.len(), &mut out) };
    check("foreach norm", err);
    out
}

/// Multiplies every tensor of `ts` in place by `scale`.
pub fn mul_(ts: &[Tensor], scale: f64) {
    if ts.is_empty() {
        return;
    }
    let h = handles(ts);
    // SAFETY: live at::Tensors for the call; the kernel scales them in place.
    let err = unsafe { palisade_foreach_mul(h.as_ptr(), h.len(), scale) };
    check("foreach mul", err);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn fused_adamw_equals_the_per_tensor_update() {
        tch::manual_seed(3);
        let shapes: [&[i64]; 3] = [&[4, 3], &[7], &[2, 2, 5]];
        let make = || -> Vec<Tensor> {
            shapes
                .iter()
                .map(|s| Tensor::randn(*s, (Kind::Float, Device::Cpu)))
                .collect()
        };
        let (params, grads, m, v) = (
            make(),
            make(),
            make(),
            make().into_iter().map(|t| t.abs()).collect::<Vec<_>>(),
        );
        let copy = |ts: &[Tensor]| ts.iter().map(Tensor::copy).collect::<Vec<_>>();
        let (p2, m2, v2) = (copy(&params), copy(&m), copy(&v));
        let a = AdamWStep {
            lr: 0.01,
            betas: [0.9, 0.99],
            weight_decay: 0.1,
            eps: 1e-8,
            step: 3,
        };
        adamw_(&params, &grads, &m, &v, a);
        let (bc1, bc2) = (1.0 - 0.9f64.powi(3), 1.0 - 0.99f64.powi(3));
        for i in 0..3 {
            let p = &p2[i] * (1.0 - a.lr * a.weight_decay);
            let mi = &m2[i] * 0.9 + &grads[i] * 0.1;
            let vi = &v2[i] * 0.99 + grads[i].square() * 0.01;
            let want = &p - (&mi / (vi.sqrt() / bc2.sqrt() + a.eps)) * (a.lr / bc1);
            assert!(
                params[i].allclose(&want, 1e-5, 1e-6, false),
                "parameter {i}"
            );
            assert!(m[i].allclose(&mi, 1e-6, 1e-7, false), "first moment {i}");
            assert!(v[i].allclose(&vi, 1e-6, 1e-7, false), "second moment {i}");
        }
    }

    #[test]
    fn norm_and_scale_cover_the_whole_list() {
        let ts = vec![
            Tensor::from_slice(&[3.0f32, 0.0]),
            Tensor::from_slice(&[4.0f32]),
        ];
        assert!((norm(&ts) - 5.0).abs() < 1e-6);
        mul_(&ts, 0.5);
        assert_eq!(Vec::<f32>::try_from(&ts[1]).unwrap(), vec![2.0]);
        assert_eq!(norm(&[]), 0.0);
    }
}
