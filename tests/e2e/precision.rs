//! `train.precision`: `bf16_mixed` (float32 weights, bfloat16 autocast) and `bf16` (bfloat16
//! weights, float32 masters in the optimizer) train on the CPU to within bfloat16's rounding of
//! the float32 run, and a `bf16` run resumes exactly from its masters.

use crate::common::*;
use std::path::Path;
use tch::Kind;

/// Loss gap allowed after 3 steps, relative: bfloat16 keeps 8 significant bits (0.4%), and a
/// few steps of training compound it.
const LOSS_TOL: f64 = 3e-2;
/// Largest weight gap allowed after 3 steps: five Adam steps of the configs' lr 2e-3.
const WEIGHT_TOL: f64 = 1e-2;

/// Trains `cfg` 3 steps in each precision; asserts losses and weights near the float32 run's,
/// bfloat16 weights in the `bf16` checkpoint and float32 masters in its optimizer state.
fn trains_near_fp32(d: &Path, cfg: &str) {
    let stop = ["--stop-at-step", "3", "--set", "train.eval_every=0"];
    let ckpt = "checkpoints/step-00000003";
    let run = |p: &str| {
        let mut args = stop.to_vec();
        let set = format!("train.precision={p}");
        args.extend(["--set", &set]);
        train_into(d, cfg, p, &args)
    };
    let fp32 = run("fp32");
    let want_loss = train_steps(&fp32.join("metrics.jsonl"));
    let want = read_tensors(&fp32.join(ckpt).join("model.safetensors"));
    for p in ["bf16_mixed", "bf16"] {
        let got_run = run(p);
        let losses = train_steps(&got_run.join("metrics.jsonl"));
        assert_eq!(losses.len(), want_loss.len());
        for ((s, a), (_, b)) in want_loss.iter().zip(&losses) {
            assert!(
                (a - b).abs() <= LOSS_TOL * a.abs().max(1.0),
                "{p} step {s}: loss {b} vs fp32 {a}"
            );
        }
        let got = read_tensors(&got_run.join(ckpt).join("model.safetensors"));
        let want_kind = if p == "bf16" {
            Kind::BFloat16
        } else {
            Kind::Float
        };
        for (name, t) in &want {
            let g = &got[name];
            assert_eq!(g.kind(), want_kind, "{p}: {name} saved as {:?}", g.kind());
            let diff = max_abs_diff(t, g);
            assert!(diff <= WEIGHT_TOL, "{p}: {name} differs by {diff:e}");
        }
        let opt = read_tensors(&got_run.join(ckpt).join("optimizer.safetensors"));
        let masters: Vec<_> = opt.keys().filter(|k| k.starts_with("master.")).collect();
        if p == "bf16" {
            assert!(!masters.is_empty(), "no master weights in {:?}", opt.keys());
            for k in masters {
                let m = &opt[k];
                assert_eq!(m.kind(), Kind::Float, "{k}");
                // The model's weight is its master rounded to bfloat16.
                let w = &got[k.trim_start_matches("master.")];
                assert_eq!(max_abs_diff(&m.to_kind(Kind::BFloat16), w), 0.0, "{k}");
            }
        } else {
            assert!(masters.is_empty(), "{p} keeps no masters: {masters:?}");
        }
    }
}

#[test]
fn siglip_trains_in_bf16_near_fp32() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path(), "");
    trains_near_fp32(dir.path(), cfg.to_str().unwrap());
}

#[test]
fn pali_trains_in_bf16_near_fp32() {
    let dir = tempfile::tempdir().unwrap();
    // Stage 2: the ViT trains too, so every stack runs in bfloat16.
    let cfg = crate::pali::pali_config(dir.path());
    let d = dir.path();
    std::fs::write(
        d.join("stage2.yaml"),
        format!("base: {}\ntrain: {{freeze_vision: false}}\n", cfg.display()),
    )
    .unwrap();
    trains_near_fp32(d, d.join("stage2.yaml").to_str().unwrap());
}

#[test]
fn a_bf16_run_resumes_exactly_from_its_masters() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path(), "");
    let extra = [
        "--set",
        "train.precision=bf16",
        "--set",
        "train.eval_every=0",
    ];
    let (a, b) = straight_and_resumed(dir.path(), cfg.to_str().unwrap(), 2, &extra);
    let last = "checkpoints/step-00000006";
    for f in ["model.safetensors", "optimizer.safetensors"] {
        same_tensors(&a.join(last).join(f), &b.join(last).join(f), f);
    }
}

#[test]
fn an_unknown_precision_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path(), "");
    let out = palisade(
        dir.path(),
        &[
            "train",
            cfg.to_str().unwrap(),
            "--set",
            "train.precision=fp16",
            "--no-progress",
        ],
    );
    let t = text(&out);
    assert!(
        !out.status.success()
            && t.contains("key train.precision: \"fp16\" is not fp32, bf16_mixed or bf16"),
        "{t}"
    );
    assert!(!dir.path().join("runs").exists());
}

#[test]
fn two_ranks_in_bf16_with_sharded_masters_and_exact_accumulation_match_one_fp32_process() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The data-parallel tests' data: every world size sees the same global batches.
    crate::distributed::training::synth_small_row_groups(d);
    let cfg = tiny_config(d, "");
    let cfg = cfg.to_str().unwrap();
    let common = ["--set", "data.shuffle=false", "--set", "train.eval_every=0"];
    let one = train_into(d, cfg, "one", &common);
    let two = d.join("two");
    let mut cmd = crate::distributed::training::mpirun_train(2, d, cfg, &two);
    cmd.args(common).args([
        "--set",
        "train.precision=bf16",
        "--set",
        "parallel.shard=optimizer",
        "--set",
        "train.accum_steps=2",
        "--set",
        "train.remat=blocks",
    ]);
    crate::distributed::ranks::run(cmd, "bf16 on 2 ranks");
    let last = "checkpoints/step-00000006";
    let want = read_tensors(&one.join(last).join("model.safetensors"));
    let got = read_tensors(&two.join(last).join("model.safetensors"));
    for (name, t) in &want {
        let diff = max_abs_diff(t, &got[name]);
        assert!(diff <= 2.0 * WEIGHT_TOL, "{name} differs by {diff:e}");
    }
    for ((s, a), (_, b)) in train_steps(&one.join("metrics.jsonl"))
        .iter()
        .zip(&train_steps(&two.join("metrics.jsonl")))
    {
        assert!(
            (a - b).abs() <= LOSS_TOL * a.abs().max(1.0),
            "step {s}: {b} vs {a}"
        );
    }
    // Both ranks' masters are in their shards, every one in float32 (read consolidated).
    let merged = d.join("merged");
    palisade_ok(
        d,
        &[
            "checkpoint",
            "consolidate",
            two.join(last).to_str().unwrap(),
            "--out",
            merged.to_str().unwrap(),
        ],
    );
    let opt = read_tensors(&merged.join("optimizer.safetensors"));
    assert!(opt.values().filter(|t| t.kind() == Kind::Float).count() == opt.len());
    let masters = opt.keys().filter(|k| k.starts_with("master.")).count();
    assert_eq!(masters, want.len(), "one master per trainable tensor");
}
