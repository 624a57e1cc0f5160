//! `train.accum_steps` and `train.remat`: a step in micro-batches, or with its blocks
//! recomputed, trains as the plain step does, for SigLIP (exact, GradCache-style accumulation)
//! and PaLI (micro-batches weighted by their target tokens).

use crate::common::*;
use std::path::Path;

/// The plans compared with the plain step: micro-batches, remat, both.
const PLANS: [(&str, &[&str]); 3] = [
    ("accum", &["train.accum_steps=4"]),
    ("remat", &["train.remat=blocks"]),
    ("both", &["train.accum_steps=2", "train.remat=every_2"]),
];

/// Trains `cfg` for 3 steps plainly and with each of [`PLANS`]; asserts equal losses at every
/// step and equal weights after the third.
fn trains_as_the_plain_step(d: &Path, cfg: &str) {
    let stop = ["--stop-at-step", "3", "--set", "train.eval_every=0"];
    let plain = train_into(d, cfg, "plain", &stop);
    let ckpt = "checkpoints/step-00000003/model.safetensors";
    let (want_loss, want) = (
        train_steps(&plain.join("metrics.jsonl")),
        read_tensors(&plain.join(ckpt)),
    );
    assert_eq!(want_loss.len(), 3, "{want_loss:?}");
    for (name, plan) in PLANS {
        let mut args = stop.to_vec();
        for p in plan {
            args.extend(["--set", p]);
        }
        let run = train_into(d, cfg, name, &args);
        for ((s, a), (_, b)) in want_loss
            .iter()
            .zip(&train_steps(&run.join("metrics.jsonl")))
        {
            assert!(
                (a - b).abs() <= 1e-5 * a.abs().max(1.0),
                "{plan:?} step {s}: loss {b} vs {a}"
            );
        }
        let got = read_tensors(&run.join(ckpt));
        for (t_name, t) in &want {
            // A key bias shifts every logit of a query alike, so softmax cancels it: its true
            // gradient is 0 and Adam turns the rounding noise into lr-sized steps either way.
            if t_name.ends_with("k_proj.bias") {
                continue;
            }
            let diff = max_abs_diff(t, &got[t_name]);
            assert!(
                diff <= 1e-4,
                "{plan:?}: {t_name} differs by {diff:e} after 3 steps"
            );
        }
    }
}

#[test]
fn siglip_micro_batches_and_remat_train_as_the_plain_step() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path(), "");
    trains_as_the_plain_step(dir.path(), cfg.to_str().unwrap());
}

#[test]
fn pali_micro_batches_and_remat_train_as_the_plain_step() {
    let dir = tempfile::tempdir().unwrap();
    // Stage 2: the ViT trains too, so all three stacks are recomputed under remat.
    let cfg = crate::pali::pali_config(dir.path());
    let cfg = cfg.to_str().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("stage2.yaml"),
        format!("base: {cfg}\ntrain: {{freeze_vision: false}}\n"),
    )
    .unwrap();
    trains_as_the_plain_step(d, d.join("stage2.yaml").to_str().unwrap());
}

#[test]
fn bad_accum_steps_remat_and_shard_values_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path(), "");
    let cfg = cfg.to_str().unwrap();
    for (sets, want) in [
        (
            &["train.accum_steps=3"][..],
            "key train.accum_steps: 3 does not divide the 16 examples per rank",
        ),
        (
            &["train.remat=every_0"],
            "key train.remat: \"every_0\" is not none, blocks or every_N",
        ),
        (
            &["parallel.shard=zero3"],
            "key parallel.shard: \"zero3\" is not none, optimizer or full",
        ),
        (
            &["parallel.shard=full"],
            "key parallel.shard: full frees each block's parameters between its forward and its \
             recomputation in backward, so it needs train.remat: blocks or every_N (not none)",
        ),
        (
            &[
                "parallel.shard=full",
                "train.remat=blocks",
                "train.ema_decay=0.9",
            ],
            "key train.ema_decay: 0.9 keeps a whole copy of every parameter on every rank",
        ),
    ] {
        let mut args = vec!["train", cfg, "--no-progress"];
        for s in sets {
            args.extend(["--set", s]);
        }
        let out = palisade(dir.path(), &args);
        let t = text(&out);
        assert!(!out.status.success() && t.contains(want), "{sets:?}: {t}");
        assert!(!t.contains("panicked"), "{t}");
    }
    assert!(!dir.path().join("runs").exists());
}
