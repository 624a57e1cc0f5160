//! Host memory for collectives: which tensor kinds travel, contiguous CPU staging, and slices
//! over a tensor's own storage (no copy when the tensor is already contiguous on the CPU).

use crate::error::{Result, ShardingError};
use mpi::datatype::Equivalence;
use tch::kind::Element;
use tch::{Device, Kind, Tensor};

/// Element types a host-memory backend can carry (libtorch and MPI agree on their layout).
pub(crate) trait Elem: Element + Equivalence + Copy {}
impl Elem for f32 {}
impl Elem for f64 {}
impl Elem for i64 {}
impl Elem for i32 {}
impl Elem for u8 {}

/// Runs `$body` with `$T` bound to the Rust element type of `$kind`, or `$other` when the kind
/// cannot travel.
macro_rules! with_elem {
    ($kind:expr, $T:ident => $body:expr, else $other:expr) => {
        match $kind {
            tch::Kind::Float => {
                type $T = f32;
                $body
            }
            tch::Kind::Double => {
                type $T = f64;
                $body
            }
            tch::Kind::Int64 => {
                type $T = i64;
                $body
            }
            tch::Kind::Int => {
                type $T = i32;
                $body
            }
            tch::Kind::Uint8 => {
                type $T = u8;
                $body
            }
            _ => $other,
        }
    };
}
pub(crate) use with_elem;

/// Kinds [`with_elem`] accepts, for error messages.
pub(crate) const SUPPORTED: &str = "float32, float64, int64, int32 or uint8";

/// Whether a host-memory collective carries tensors of `kind`.
pub(crate) fn host_carries(kind: Kind) -> bool {
    with_elem!(kind, T => { let _ = T::ZERO; true }, else false)
}

/// Checks `t` can travel through a host-memory collective: a supported kind and an element
/// count MPI's `int` counts can describe.
pub(crate) fn check(op: &'static str, rank: usize, t: &Tensor) -> Result<()> {
    if !host_carries(t.kind()) {
        return Err(ShardingError::BadTensor {
            op,
            rank,
            msg: format!("tensor kind {:?} is not one of {SUPPORTED}", t.kind()),
        });
    }
    if t.numel() > i32::MAX as usize {
        return Err(ShardingError::BadTensor {
            op,
            rank,
            msg: format!(
                "{} elements exceed one message's limit of {}; split the tensor",
                t.numel(),
                i32::MAX
            ),
        });
    }
    Ok(())
}

/// `t` itself when it is contiguous on the CPU, else a contiguous CPU copy.
pub(crate) fn host(t: &Tensor) -> Tensor {
    if t.device() == Device::Cpu && t.is_contiguous() {
        t.shallow_clone()
    } else {
        t.to_device(Device::Cpu).contiguous()
    }
}

/// An uninitialised contiguous CPU tensor.
pub(crate) fn empty_host(shape: &[i64], kind: Kind) -> Tensor {
    Tensor::empty(shape, (kind, Device::Cpu))
}

/// Panics unless `t` is a contiguous CPU tensor of element type `T`: the invariant that makes
/// the slices below sound. Callers stage through [`host`] and dispatch through [`with_elem`].
fn assert_viewable<T: Elem>(t: &Tensor) {
    assert!(
        t.device() == Device::Cpu && t.is_contiguous() && t.kind() == T::KIND,
        "internal: host slice over a {:?} {:?} tensor (contiguous: {})",
        t.kind(),
        t.device(),
        t.is_contiguous()
    );
}

/// The elements of a contiguous CPU tensor, borrowed.
pub(crate) fn as_slice<T: Elem>(t: &Tensor) -> &[T] {
    assert_viewable::<T>(t);
    let n = t.numel();
    if n == 0 {
        return &[];
    }
    // SAFETY: `t` is a contiguous CPU tensor whose elements are `T` (checked above), so its data
    // pointer (storage offset included) addresses `n` initialised `T`s that stay alive while `t`
    // is borrowed.
    unsafe { std::slice::from_raw_parts(t.data_ptr() as *const T, n) }
}

/// The elements of a contiguous CPU tensor, mutably borrowed.
pub(crate) fn as_mut_slice<T: Elem>(t: &mut Tensor) -> &mut [T] {
    assert_viewable::<T>(t);
    let n = t.numel();
    if n == 0 {
        return &mut [];
    }
    // SAFETY: as in `as_slice`; the exclusive borrow of `t` keeps this handle from reading the
    // memory meanwhile, and collectives never pass the same storage as source and destination.
    unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut T, n) }
}

/// The bytes of a contiguous CPU tensor of a supported kind.
pub(crate) fn as_bytes(t: &Tensor) -> &[u8] {
    let n = byte_len(t);
    if n == 0 {
        return &[];
    }
    // SAFETY: `byte_len` checked `t` is a contiguous CPU tensor of a plain-old-data kind, so its
    // data pointer addresses `n` initialised bytes that stay alive while `t` is borrowed.
    unsafe { std::slice::from_raw_parts(t.data_ptr() as *const u8, n) }
}

/// The bytes of a contiguous CPU tensor of a supported kind, mutably.
pub(crate) fn as_mut_bytes(t: &mut Tensor) -> &mut [u8] {
    let n = byte_len(t);
    if n == 0 {
        return &mut [];
    }
    // SAFETY: as in `as_bytes`; every bit pattern is a valid value of these kinds, and callers
    // never hand the same memory to another slice at the same time.
    unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut u8, n) }
}

/// Byte length of `t`, after checking the invariant the byte views rely on.
fn byte_len(t: &Tensor) -> usize {
    let supported = with_elem!(t.kind(), T => { let _ = T::ZERO; true }, else false);
    assert!(
        supported && t.device() == Device::Cpu && t.is_contiguous(),
        "internal: byte view over a {:?} {:?} tensor (contiguous: {})",
        t.kind(),
        t.device(),
        t.is_contiguous()
    );
    t.numel() * t.kind().elt_size_in_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_see_the_tensor_memory() {
        let mut t = Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
        as_mut_slice::<f32>(&mut t)[1] = 7.0;
        assert_eq!(as_slice::<f32>(&t), &[1.0, 7.0, 3.0]);
        // A narrowed view starts at its storage offset.
        let tail = host(&t.narrow(0, 1, 2));
        assert_eq!(as_slice::<f32>(&tail), &[7.0, 3.0]);
        let strided = Tensor::from_slice(&[1i64, 2, 3, 4]).view([2, 2]).tr();
        assert_eq!(as_slice::<i64>(&host(&strided)), &[1, 3, 2, 4]);
        let mut b = Tensor::from_slice(&[1u8, 2, 3]);
        as_mut_bytes(&mut b)[0] = 9;
        assert_eq!(as_bytes(&b.narrow(0, 0, 2)), &[9, 2]);
        assert_eq!(as_bytes(&Tensor::from_slice(&[1.0f64])).len(), 8);
    }

    #[test]
    fn refuses_unsupported_kinds() {
        let t = Tensor::from_slice(&[true, false]);
        let err = check("all_reduce", 3, &t).unwrap_err().to_string();
        assert!(
            err.contains("all_reduce") && err.contains("rank 3"),
            "{err}"
        );
        assert!(check("all_reduce", 0, &Tensor::from_slice(&[1u8])).is_ok());
    }
}
