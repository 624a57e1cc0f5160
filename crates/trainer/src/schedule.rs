//! Learning-rate schedules as big_vision names them: a linear warm-up from 0 to the peak, then
//! `cosine` decay to `min_lr_ratio · peak` at the last step, `linear` decay to it, or `rsqrt`
//! (peak · √(timescale / (timescale + steps since warm-up))) with a linear cool-down to 0 over
//! the last `cooldown_steps`.

/// A schedule of `train.schedule`.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// `cosine`, `linear` or `rsqrt`.
    pub kind: Kind,
    /// Peak learning rate.
    pub peak: f64,
    /// Warm-up steps.
    pub warmup: u64,
    /// Total steps.
    pub total: u64,
    /// Final rate as a fraction of the peak (cosine, linear).
    pub min_ratio: f64,
    /// rsqrt's timescale in steps.
    pub timescale: u64,
    /// Steps at the end over which the rate falls linearly to 0 (any kind; 0: none).
    pub cooldown: u64,
}

/// The shape after warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Half a cosine down to the floor.
    Cosine,
    /// A straight line down to the floor.
    Linear,
    /// Inverse square root.
    Rsqrt,
}

impl Kind {
    /// The kind called `name` (`train.schedule`).
    pub fn named(name: &str) -> Option<Kind> {
        match name {
            "cosine" => Some(Kind::Cosine),
            "linear" => Some(Kind::Linear),
            "rsqrt" => Some(Kind::Rsqrt),
            _ => None,
        }
    }
}

impl Schedule {
    /// Learning rate for the update made at 0-based `step`.
    pub fn lr(&self, step: u64) -> f64 {
        let base = if step < self.warmup {
            self.peak * (step + 1) as f64 / self.warmup as f64
        } else {
            let since = (step - self.warmup) as f64;
            let span = self.total.saturating_sub(self.warmup).max(1) as f64;
            let progress = (since / span).min(1.0);
            let floor = self.min_ratio;
            self.peak
                * match self.kind {
                    Kind::Cosine => {
                        floor
                            + (1.0 - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
                    }
                    Kind::Linear => floor + (1.0 - floor) * (1.0 - progress),
                    Kind::Rsqrt => {
                        let ts = self.timescale.max(1) as f64;
                        (ts / (ts + since)).sqrt()
                    }
                }
        };
        if self.cooldown == 0 {
            return base;
        }
        let left = self.total.saturating_sub(step) as f64;
        base * (left / self.cooldown as f64).min(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(kind: Kind) -> Schedule {
        Schedule {
            kind,
            peak: 1.0,
            warmup: 10,
            total: 110,
            min_ratio: 0.1,
            timescale: 25,
            cooldown: 0,
        }
    }

    #[test]
    fn warms_up_then_decays() {
        let s = schedule(Kind::Cosine);
        assert!((s.lr(0) - 0.1).abs() < 1e-12);
        assert!((s.lr(9) - 1.0).abs() < 1e-12);
        assert!((s.lr(10) - 1.0).abs() < 1e-12);
        assert!((s.lr(60) - 0.55).abs() < 1e-12);
        assert!((s.lr(110) - 0.1).abs() < 1e-12);
        assert!(s.lr(30) > s.lr(31));
        let l = schedule(Kind::Linear);
        assert!((l.lr(60) - 0.55).abs() < 1e-12 && (l.lr(35) - 0.775).abs() < 1e-12);
        // rsqrt: 1/√(1 + n/25) n steps after warm-up; 75 steps on, half of √... = 1/2.
        let r = schedule(Kind::Rsqrt);
        assert!((r.lr(10) - 1.0).abs() < 1e-12);
        assert!((r.lr(85) - 0.5).abs() < 1e-12);
        // A 20-step cool-down takes rsqrt linearly to 0 at the last step.
        let c = Schedule { cooldown: 20, ..r };
        assert!((c.lr(100) - r.lr(100) * 0.5).abs() < 1e-12);
        assert!((c.lr(89) - r.lr(89)).abs() < 1e-12);
        assert_eq!(c.lr(110), 0.0);
    }
}
