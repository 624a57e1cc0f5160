//! A stable number per row id, for per-row choices that must not depend on read order.

/// FNV-1a of a row id: a stable per-row number (caption choice, augmentation keys).
pub(crate) fn id_hash(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}
