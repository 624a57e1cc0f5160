//! Timing for the benchmarks: untimed warm-up calls, then the median and mean of timed ones.

use crate::error::Result;
use std::time::Instant;

/// Median and mean milliseconds of `timed` calls of `f`, after `warmup` untimed calls.
pub fn median_mean_ms(
    warmup: usize,
    timed: usize,
    mut f: impl FnMut() -> Result<()>,
) -> Result<(f64, f64)> {
    let mut times = Vec::with_capacity(timed);
    for i in 0..warmup + timed {
        let start = Instant::now();
        f()?;
        if i >= warmup {
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let mean = times.iter().sum::<f64>() / times.len().max(1) as f64;
    Ok((median(&mut times), mean))
}

/// The median of `times` (NaN for none), sorting them in place.
pub fn median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    times.get(times.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Waits for `device`'s queued kernels, so that a timed call ends when its work does.
pub fn sync(device: tch::Device) {
    if let tch::Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_timed_calls() {
        let mut calls = 0;
        let (median, mean) = median_mean_ms(2, 3, || {
            calls += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(calls, 5);
        assert!(median >= 0.0 && mean >= 0.0 && median.is_finite());
    }
}
