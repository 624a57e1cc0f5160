//! Mixed precision: libtorch autocast with bfloat16, on CUDA or the CPU (tch alone offers CUDA
//! only, with float16), and the `train.precision` modes built on it.

use tch::Device;

extern "C" {
    fn palisade_autocast_enter(cuda: i32) -> i32;
    fn palisade_autocast_exit(cuda: i32, prev: i32);
    fn palisade_autocast_enabled(cuda: i32) -> i32;
    fn palisade_autocast_clear_cache();
}

/// Frees autocast's cached bfloat16 copies of parameters (refilled on next use): sharded
/// blocks free their parameters after each segment, and their copies must go with them.
pub fn clear_cache() {
    // SAFETY: no arguments; libtorch's cache is thread-local.
    unsafe { palisade_autocast_clear_cache() }
}

/// Where the arithmetic runs in which floating-point format (`train.precision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Everything in float32.
    Fp32,
    /// float32 parameters, gradients and optimizer state; matrix products and convolutions
    /// under bfloat16 autocast (softmax, norms and losses stay float32).
    Bf16Mixed,
    /// bfloat16 parameters, gradients and activations, with float32 master weights and
    /// optimizer state kept by the optimizer; norm statistics, softmax and losses accumulate
    /// in float32.
    Bf16,
}

impl Precision {
    /// The mode `name` (`fp32`, `bf16_mixed`, `bf16`), or an error naming it.
    pub fn named(name: &str) -> Result<Precision, String> {
        match name {
            "fp32" => Ok(Precision::Fp32),
            "bf16_mixed" => Ok(Precision::Bf16Mixed),
            "bf16" => Ok(Precision::Bf16),
            other => Err(format!(
                "key train.precision: {other:?} is not fp32, bf16_mixed or bf16"
            )),
        }
    }

    /// The mode a run gets when it names none: `bf16_mixed` on CUDA, `fp32` on the CPU.
    pub fn default_for(device: Device) -> Precision {
        if device.is_cuda() {
            Precision::Bf16Mixed
        } else {
            Precision::Fp32
        }
    }

    /// Its name in configs.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16Mixed => "bf16_mixed",
            Precision::Bf16 => "bf16",
        }
    }

    /// The device whose autocast the forward runs under on `device`: `bf16_mixed`'s alone
    /// (`bf16` weights make the arithmetic bfloat16 by themselves).
    pub fn autocast_on(self, device: Device) -> Option<Device> {
        (self == Precision::Bf16Mixed).then_some(device)
    }
}

/// Leaves autocast when dropped, even by a panic.
struct Region {
    cuda: i32,
    prev: i32,
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: undoes the matching enter on this thread; plain libtorch globals.
        unsafe { palisade_autocast_exit(self.cuda, self.prev) }
    }
}

/// Runs `f` under bfloat16 autocast for the type of `device` (CPU or CUDA); plainly for `None`.
pub fn bf16<T>(device: Option<Device>, f: impl FnOnce() -> T) -> T {
    let Some(device) = device else {
        return f();
    };
    let cuda = i32::from(device.is_cuda());
    // SAFETY: sets libtorch's thread-local autocast state; `Region` restores it.
    let prev = unsafe { palisade_autocast_enter(cuda) };
    let _region = Region { cuda, prev };
    f()
}

/// The device type whose autocast is on in this thread (CUDA first), for replaying a forward.
pub fn current() -> Option<Device> {
    // SAFETY: plain getters of libtorch's thread-local autocast state.
    unsafe {
        if palisade_autocast_enabled(1) != 0 {
            Some(Device::Cuda(0))
        } else if palisade_autocast_enabled(0) != 0 {
            Some(Device::Cpu)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    extern "C" {
        fn palisade_autocast_is_bf16(cuda: i32) -> i32;
    }

    #[test]
    fn cpu_regions_compute_matmuls_in_bf16_and_nest() {
        let a = Tensor::randn([4, 4], (Kind::Float, Device::Cpu));
        assert_eq!(current(), None);
        let kinds = bf16(Some(Device::Cpu), || {
            assert_eq!(current(), Some(Device::Cpu));
            // SAFETY: a plain getter.
            assert_eq!(unsafe { palisade_autocast_is_bf16(0) }, 1);
            let inner = bf16(Some(Device::Cpu), || a.matmul(&a).kind());
            (inner, a.matmul(&a).kind(), a.softmax(-1, None).kind())
        });
        assert_eq!(kinds, (Kind::BFloat16, Kind::BFloat16, Kind::Float));
        assert_eq!(current(), None, "the outer region restores the state");
        assert_eq!(a.matmul(&a).kind(), Kind::Float);
        assert_eq!(bf16(None, || a.matmul(&a).kind()), Kind::Float);
    }

    #[test]
    fn modes_are_named_and_default_by_device() {
        assert_eq!(Precision::named("bf16_mixed"), Ok(Precision::Bf16Mixed));
        let err = Precision::named("fp16").unwrap_err();
        assert!(
            err.contains("\"fp16\"") && err.contains("train.precision"),
            "{err}"
        );
        assert_eq!(Precision::default_for(Device::Cpu), Precision::Fp32);
        assert_eq!(
            Precision::default_for(Device::Cuda(0)),
            Precision::Bf16Mixed
        );
        assert_eq!(Precision::Fp32.autocast_on(Device::Cpu), None);
    }
}
