//! Checks before the first step, so that a run that cannot go on stops at once with numbers
//! rather than hours later: the run folder's lock and crash debris, the disk a checkpoint
//! needs, and the memory the model's training state needs.

use crate::error::{Result, TrainerError};
use palisade_evaluator::RunFolder;
use palisade_files::FolderLock;
use tch::{nn, Device};

/// Locks the run folder for this process and removes what dead writers left in it.
pub fn lock_run(run: &RunFolder) -> Result<FolderLock> {
    let lock = FolderLock::acquire(&run.root)?;
    if let Some(previous) = &lock.took_over {
        tracing::warn!(
            "{}: took over the lock of {previous}, which is no longer running",
            run.root.display()
        );
    }
    for dir in [run.root.clone(), run.checkpoints(), run.report()] {
        for d in palisade_files::remove_debris(&dir)? {
            tracing::warn!(
                "removed {} ({} bytes), left by a writer that died mid-write",
                d.path.display(),
                d.bytes
            );
        }
    }
    Ok(lock)
}

/// Bytes of `vs`'s variables, and the number of trainable elements.
fn sizes(vs: &nn::VarStore) -> (u64, u64) {
    let bytes = vs
        .variables()
        .into_values()
        .map(|t| t.numel() as u64 * t.kind().elt_size_in_bytes() as u64)
        .sum();
    let trainable = vs
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as u64)
        .sum();
    (bytes, trainable)
}

/// Bytes a checkpoint of `vs` takes: its weights plus AdamW's two fp32 moments of each
/// trainable tensor, and a margin for the small files.
pub fn checkpoint_bytes(vs: &nn::VarStore) -> u64 {
    let (weights, trainable) = sizes(vs);
    weights + 8 * trainable + (1 << 20)
}

/// Bytes the training state of `vs` holds in memory: weights, fp32 gradients and AdamW
/// moments of the trainable ones (activations come on top).
pub fn state_bytes(vs: &nn::VarStore) -> u64 {
    let (weights, trainable) = sizes(vs);
    weights + 12 * trainable
}

/// `(MemTotal, MemAvailable)` of this machine in bytes, from /proc/meminfo.
fn meminfo() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map(|kib| kib * 1024)
    };
    Some((field("MemTotal:")?, field("MemAvailable:")?))
}

/// This process's peak resident set (`VmHWM` of /proc/self/status) in MiB; NaN where unreadable.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Refuses a model whose training state cannot fit this machine's memory, and warns when it
/// exceeds what is free now. (CUDA memory is not queried here: libtorch reports it out of
/// memory at the first step, naming the allocation.)
pub fn check_memory(vs: &nn::VarStore, device: Device) -> Result<()> {
    if device != Device::Cpu {
        return Ok(());
    }
    let Some((total, available)) = meminfo() else {
        return Ok(());
    };
    if let Some(warning) = memory_verdict(state_bytes(vs), total, available)? {
        tracing::warn!("{warning}");
    }
    Ok(())
}

/// An error when `need` bytes exceed the machine's `total`, a warning when they exceed what is
/// `available` now.
fn memory_verdict(need: u64, total: u64, available: u64) -> Result<Option<String>> {
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    if need > total {
        return Err(TrainerError::Config(format!(
            "the model's weights, gradients and optimizer state need {:.1} GiB ({need} bytes) \
             before any activation, but this machine has {:.1} GiB of memory: choose a smaller \
             model or a machine with more memory",
            gib(need),
            gib(total)
        )));
    }
    Ok((need > available).then(|| {
        format!(
            "the model's training state needs {:.1} GiB but only {:.1} GiB of memory is free now",
            gib(need),
            gib(available)
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_state_is_counted_and_checked_against_memory() {
        let vs = nn::VarStore::new(Device::Cpu);
        let _w = vs.root().zeros("w", &[1000]);
        let _frozen = vs.root().zeros_no_train("f", &[500]);
        // 1,500 fp32 weights, plus fp32 gradients and two AdamW moments of the 1,000 trainable.
        assert_eq!(state_bytes(&vs), 6000 + 12 * 1000);
        assert_eq!(checkpoint_bytes(&vs), 6000 + 8 * 1000 + (1 << 20));
        let gib = 1u64 << 30;
        let err = memory_verdict(30 * gib, 24 * gib, 20 * gib)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("need 30.0 GiB") && err.contains("has 24.0 GiB"),
            "{err}"
        );
        let warn = memory_verdict(22 * gib, 24 * gib, 20 * gib)
            .unwrap()
            .unwrap();
        assert!(warn.contains("only 20.0 GiB"), "{warn}");
        assert!(memory_verdict(gib, 24 * gib, 20 * gib).unwrap().is_none());
    }
}
