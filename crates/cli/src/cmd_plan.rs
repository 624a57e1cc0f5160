//! `palisade plan`: the memory each rank of a configured run needs, and whether it fits.

use anyhow::{bail, Result};
use palisade_trainer::config::ExperimentConfig;
use palisade_trainer::plan::{plan, Plan};
use palisade_trainer::recipe::Experiment;
use std::path::PathBuf;

/// Arguments of `palisade plan`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Experiment config (YAML; a recipe plans each stage).
    config: PathBuf,
    /// Ranks in all.
    #[arg(long, default_value_t = 1)]
    world: usize,
    /// Tensor-parallel degree (data-parallel ranks = world / tp).
    #[arg(long, default_value_t = 1)]
    tp: usize,
    /// Override a key: `--set train.batch_size=256` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Exit with an error unless every stage fits in this many GiB per GPU.
    #[arg(long, value_name = "GIB")]
    require_fit: Option<f64>,
    /// Print the plan as JSON (bytes per rank by term).
    #[arg(long)]
    json: bool,
}

/// Plans every stage of the config and prints the plans.
pub fn run(a: Args) -> Result<()> {
    let plans: Vec<Plan> = match Experiment::load(&a.config, &a.sets)? {
        Experiment::Single(cfg) => vec![plan_one(&cfg, &a)?],
        Experiment::Recipe(r) => r
            .stages
            .iter()
            .map(|s| plan_one(&s.cfg, &a))
            .collect::<Result<_>>()?,
    };
    if a.json {
        let out: Vec<serde_json::Value> = plans.iter().map(to_json).collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for p in &plans {
            print!("{p}");
        }
    }
    if let Some(gib) = a.require_fit {
        for p in &plans {
            if let Err(e) = p.verdict(gib) {
                bail!("plan for {} (stage {}): {e}", p.name, p.stage);
            }
        }
    }
    Ok(())
}

/// The plan of one stage's config.
fn plan_one(cfg: &ExperimentConfig, a: &Args) -> Result<Plan> {
    let shape = palisade_trainer::stages::kind_of(cfg)?.shape(cfg)?;
    Ok(plan(cfg, shape, a.world, a.tp)?)
}

fn to_json(p: &Plan) -> serde_json::Value {
    let terms: serde_json::Map<String, serde_json::Value> = p
        .terms
        .iter()
        .map(|t| (t.name.to_string(), t.bytes.round().into()))
        .collect();
    let (none, blocks) = p.activations_none_and_blocks;
    serde_json::json!({
        "name": p.name,
        "stage": p.stage,
        "world": p.world,
        "tp": p.tp,
        "precision": p.precision.name(),
        "shard": p.shard,
        "micro_batch": p.micro_batch,
        "params": p.shape.params,
        "trainable": p.shape.trainable,
        "bytes": terms,
        "total_bytes": p.total().round(),
        "activations_without_remat": none.round(),
        "activations_remat_blocks": blocks.round(),
    })
}
