//! `palisade plan`: bytes per rank for parameters, gradients, optimizer state and activations
//! (per micro-batch, with and without remat) of a configured run at a world size and tensor-
//! parallel degree, and whether that fits on an 80 GiB or a 141 GiB GPU. Counted from the
//! configs alone (`shape`, `activations`); a test checks the totals against measured peaks.

pub mod activations;
pub mod shape;

use crate::config::ExperimentConfig;
use crate::error::{Result, TrainerError};
use palisade_model::autocast::Precision;
pub use shape::Shape;

/// GPU memory sizes the plan is checked against, in GiB (H100/A100 80 GB, H200 141 GB).
pub const GPUS_GIB: [f64; 2] = [80.0, 141.0];

const GIB: f64 = (1u64 << 30) as f64;

/// Process memory beside the model: libtorch, the data pipeline, buffers (measured on the CPU
/// at ~125 MB; a CUDA context costs about 500 MiB more).
fn runtime_bytes(cuda: bool) -> f64 {
    if cuda {
        640.0 * (1 << 20) as f64
    } else {
        140.0 * (1 << 20) as f64
    }
}

/// One line of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    /// What it counts.
    pub name: &'static str,
    /// Bytes per rank.
    pub bytes: f64,
}

/// The memory plan of one configured run.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The experiment's name.
    pub name: String,
    /// The stage kind.
    pub stage: String,
    /// Ranks in all, tensor-parallel degree, data-parallel ranks.
    pub world: usize,
    /// Tensor-parallel degree.
    pub tp: usize,
    /// `parallel.shard`.
    pub shard: String,
    /// The resolved `train.precision`.
    pub precision: Precision,
    /// Examples per micro-batch on one rank.
    pub micro_batch: usize,
    /// `train.remat`'s blocks per segment (0: none).
    pub remat: usize,
    /// The model's shape.
    pub shape: Shape,
    /// Parameters, gradients, optimizer state, activations (as configured), runtime.
    pub terms: Vec<Term>,
    /// Activation bytes per rank without remat and with `remat: blocks`.
    pub activations_none_and_blocks: (f64, f64),
}

impl Plan {
    /// Bytes per rank in all.
    pub fn total(&self) -> f64 {
        self.terms.iter().map(|t| t.bytes).sum()
    }

    /// A term's bytes by name.
    pub fn term(&self, name: &str) -> f64 {
        self.terms
            .iter()
            .find(|t| t.name == name)
            .map_or(0.0, |t| t.bytes)
    }

    /// Whether it fits in `gib`, else by how much it is over and what would bring it down.
    pub fn verdict(&self, gib: f64) -> std::result::Result<(), String> {
        let over = self.total() - gib * GIB;
        if over <= 0.0 {
            return Ok(());
        }
        let largest = self
            .terms
            .iter()
            .max_by(|a, b| a.bytes.total_cmp(&b.bytes))
            .expect("a plan has terms");
        let mut msg = format!(
            "does not fit in {gib} GiB: over by {:.1} GiB; the largest term is {} at {:.1} GiB",
            over / GIB,
            largest.name,
            largest.bytes / GIB
        );
        let (none, blocks) = self.activations_none_and_blocks;
        if self.remat == 0 && none - blocks > over {
            msg += &format!(
                "; train.remat: blocks would save {:.1} GiB",
                (none - blocks) / GIB
            );
        } else if self.shard == "none" && self.world / self.tp > 1 {
            msg += "; parallel.shard: optimizer splits the optimizer state over the ranks";
        } else if self.shard == "optimizer" && self.world / self.tp > 1 {
            msg += "; parallel.shard: full splits the blocks' parameters and gradients too";
        } else if self.micro_batch > 1 {
            msg += "; a larger train.accum_steps makes micro-batches smaller";
        }
        Err(msg)
    }
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dp = self.world / self.tp;
        writeln!(
            f,
            "plan for {} (stage {}): {} ranks = {dp} data-parallel × {} tensor-parallel",
            self.name, self.stage, self.world, self.tp
        )?;
        writeln!(
            f,
            "  {:.3} B parameters ({:.3} B trained); precision {}; parallel.shard {}; \
             micro-batch {} per rank; remat {}",
            self.shape.params as f64 / 1e9,
            self.shape.trainable as f64 / 1e9,
            self.precision.name(),
            self.shard,
            self.micro_batch,
            match self.remat {
                0 => "none".to_string(),
                1 => "blocks".to_string(),
                n => format!("every_{n}"),
            }
        )?;
        for s in &self.shape.stacks {
            writeln!(
                f,
                "  stack {:<8} {:>3} blocks, width {:>5}, {:>5} tokens, {:.3} B parameters{}",
                s.name,
                s.blocks,
                s.width,
                s.tokens,
                s.params as f64 / 1e9,
                if s.trainable { "" } else { " (frozen)" }
            )?;
        }
        writeln!(f, "  {:<28} {:>12}", "per rank", "GiB")?;
        for t in &self.terms {
            writeln!(f, "  {:<28} {:>12.3}", t.name, t.bytes / GIB)?;
        }
        writeln!(f, "  {:<28} {:>12.3}", "total", self.total() / GIB)?;
        let (none, blocks) = self.activations_none_and_blocks;
        writeln!(
            f,
            "  activations without remat {:.3} GiB, with remat: blocks {:.3} GiB",
            none / GIB,
            blocks / GIB
        )?;
        for gib in GPUS_GIB {
            match self.verdict(gib) {
                Ok(()) => writeln!(
                    f,
                    "  fits in {gib} GiB ({:.0}% used)",
                    100.0 * self.total() / (gib * GIB)
                )?,
                Err(e) => writeln!(f, "  {e}")?,
            }
        }
        Ok(())
    }
}

/// The plan of `cfg`, whose model has `shape` (its stage kind's `shape`), on `world` ranks with
/// tensor-parallel degree `tp`.
pub fn plan(cfg: &ExperimentConfig, shape: Shape, world: usize, tp: usize) -> Result<Plan> {
    let bad = |m: String| Err(TrainerError::Config(m));
    if world == 0 || tp == 0 {
        return bad("--world and --tp: must be positive".into());
    }
    if tp > world || !world.is_multiple_of(tp) {
        return bad(format!(
            "--tp {tp} does not divide --world {world} (the data-parallel size is world / tp)"
        ));
    }
    let dp = world / tp;
    let t = &cfg.train;
    if !t.batch_size.is_multiple_of(dp) {
        return bad(format!(
            "key train.batch_size: {} is not divisible by {dp} data-parallel ranks",
            t.batch_size
        ));
    }
    let per_rank = t.batch_size / dp;
    if !per_rank.is_multiple_of(t.accum_steps) {
        return bad(format!(
            "key train.accum_steps: {} does not divide the {per_rank} examples per rank",
            t.accum_steps
        ));
    }
    let micro = per_rank / t.accum_steps;
    for (dim, size) in &shape.tp_dims {
        if !size.is_multiple_of(tp) {
            return bad(format!("--tp {tp} does not divide {dim} ({size})"));
        }
    }
    let cuda = cfg.device.starts_with("cuda");
    let precision = cfg.precision(if cuda {
        tch::Device::Cuda(0)
    } else {
        tch::Device::Cpu
    });
    let remat = crate::config::remat_blocks(&t.remat).map_err(TrainerError::Config)?;
    let wide = if precision == Precision::Bf16 {
        2.0
    } else {
        4.0
    };
    let narrow = if precision == Precision::Fp32 {
        4.0
    } else {
        2.0
    };
    let (tpf, dpf) = (tp as f64, dp as f64);
    let (params, trainable) = (shape.params as f64 / tpf, shape.trainable as f64 / tpf);
    let moments = match t.optimizer.as_str() {
        // Adafactor's factored second moments are rows + columns: next to nothing.
        "adafactor" if t.adafactor.momentum.is_none() => 0.0,
        "adafactor" => 4.0,
        _ => 8.0,
    };
    // float32 masters and their float32 gradients (kept between steps, see optimizer/master.rs).
    let masters = if precision == Precision::Bf16 {
        8.0
    } else {
        0.0
    };
    let opt_split = if cfg.parallel.shard == "none" {
        1.0
    } else {
        dpf
    };
    // The CPU's attention kernels keep the score matrix; CUDA's fused ones do not.
    let scores = !cuda;
    let act = |remat: usize| {
        let e = shape
            .stacks
            .iter()
            .map(|s| activations::stack(s, scores, tp, remat))
            .fold(activations::Elements::default(), |a, b| a + b);
        let logits = shape.logits.map_or(0.0, |(n, v)| {
            (n * v) as f64 / tpf
                * (8.0
                    + if precision == Precision::Fp32 {
                        0.0
                    } else {
                        2.0
                    })
        });
        micro as f64 * (e.low * narrow + e.high * wide + logits)
    };
    // parallel.shard: full keeps 1/dp of the blocks' parameters and gradients, plus the one
    // segment being run whole (its gradients too while it trains).
    let full = cfg.parallel.shard == "full" && dp > 1;
    let blocks = |trained_only: bool| -> f64 {
        let s = shape.stacks.iter().filter(|s| s.trainable || !trained_only);
        s.map(|s| s.params as f64).sum::<f64>() / tpf
    };
    let kept = |all: f64, blocks: f64| {
        if full {
            all - blocks + blocks / dpf
        } else {
            all
        }
    };
    let mut terms = vec![
        Term {
            name: "parameters",
            bytes: kept(params, blocks(false)) * wide,
        },
        Term {
            name: "gradients",
            bytes: kept(trainable, blocks(true)) * wide,
        },
        Term {
            name: "optimizer state",
            bytes: trainable * (moments + masters) / opt_split,
        },
        Term {
            name: "activations",
            bytes: act(remat),
        },
        Term {
            name: "runtime",
            bytes: runtime_bytes(cuda),
        },
    ];
    if full {
        let segment = shape
            .stacks
            .iter()
            .map(|s| {
                let per_block = s.params as f64 / tpf / s.blocks.max(1) as f64;
                per_block * remat.max(1).min(s.blocks) as f64 * if s.trainable { 2.0 } else { 1.0 }
            })
            .fold(0.0, f64::max);
        terms.push(Term {
            name: "gathered segment",
            bytes: segment * wide,
        });
    }
    if dp > 1 {
        // A flat bucket and its collective's staging copy.
        terms.push(Term {
            name: "gradient buckets",
            bytes: 2.0 * t.grad_bucket_mb * (1 << 20) as f64,
        });
    }
    let activations_none_and_blocks = (act(0), act(1));
    Ok(Plan {
        name: cfg.name.clone(),
        stage: cfg.stage.clone(),
        world,
        tp,
        shard: cfg.parallel.shard.clone(),
        precision,
        micro_batch: micro,
        remat,
        shape,
        terms,
        activations_none_and_blocks,
    })
}
