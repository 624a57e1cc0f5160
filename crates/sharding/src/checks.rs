//! Start-up agreement between ranks: variable-length byte all-gather and the config-hash check.

use crate::error::{Result, ShardingError};
use crate::group::ProcessGroup;
use tch::Tensor;

/// Gathers every rank's `bytes` (lengths may differ), in rank order.
pub fn all_gather_bytes(group: &dyn ProcessGroup, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    let lens = group.all_gather(&Tensor::from(bytes.len() as i64))?;
    let lens = Vec::<i64>::try_from(&lens).map_err(|e| ShardingError::Collective {
        op: "all_gather",
        msg: e.to_string(),
    })?;
    let width = lens.iter().copied().max().unwrap_or(0).max(0) as usize;
    let mut padded = vec![0u8; width];
    padded[..bytes.len()].copy_from_slice(bytes);
    let all = group.all_gather(&Tensor::from_slice(&padded))?;
    let all = Vec::<u8>::try_from(&all).map_err(|e| ShardingError::Collective {
        op: "all_gather",
        msg: e.to_string(),
    })?;
    Ok(lens
        .iter()
        .enumerate()
        .map(|(r, &n)| all[r * width..r * width + n.max(0) as usize].to_vec())
        .collect())
}

/// Errors on every rank unless all ranks pass the same config `hash`, naming the ranks whose
/// hash differs from rank 0's.
pub fn check_same_config(group: &dyn ProcessGroup, hash: &str) -> Result<()> {
    let all = all_gather_bytes(group, hash.as_bytes())?;
    let short = |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(12)]).to_string();
    let differing: Vec<String> = all
        .iter()
        .enumerate()
        .filter(|(_, h)| *h != &all[0])
        .map(|(r, h)| format!("rank {r} has {}", short(h)))
        .collect();
    if differing.is_empty() {
        return Ok(());
    }
    Err(ShardingError::ConfigMismatch {
        msg: format!(
            "rank 0 has config hash {}, but {}; start every rank with the same config and --set \
             overrides",
            short(&all[0]),
            differing.join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SingleProcess;

    #[test]
    fn single_process_agrees_with_itself() {
        let g = SingleProcess;
        assert_eq!(all_gather_bytes(&g, b"abc").unwrap(), vec![b"abc".to_vec()]);
        assert_eq!(all_gather_bytes(&g, b"").unwrap(), vec![Vec::<u8>::new()]);
        check_same_config(&g, "deadbeef").unwrap();
    }
}
