//! `train.accum_steps`: a step in micro-batches trains as the whole batch would, for SigLIP
//! (exact, GradCache-style) and PaLI (micro-batches weighted by their target tokens).

use crate::common::*;
use std::path::Path;

/// Trains `cfg` for 3 steps with 1 and with 4 micro-batches; asserts equal losses at every step
/// and equal weights after the third.
fn micro_batches_train_as_the_whole_batch(d: &Path, cfg: &str) {
    let stop = ["--stop-at-step", "3", "--set", "train.eval_every=0"];
    let one = train_into(d, cfg, "one", &stop);
    let four: Vec<&str> = stop
        .iter()
        .copied()
        .chain(["--set", "train.accum_steps=4"])
        .collect();
    let four = train_into(d, cfg, "four", &four);
    let (l1, l4) = (
        train_steps(&one.join("metrics.jsonl")),
        train_steps(&four.join("metrics.jsonl")),
    );
    assert_eq!(l1.len(), 3, "{l1:?}");
    for ((s, a), (_, b)) in l1.iter().zip(&l4) {
        assert!(
            (a - b).abs() <= 1e-5 * a.abs().max(1.0),
            "step {s}: loss {a} vs {b}"
        );
    }
    let ckpt = "checkpoints/step-00000003/model.safetensors";
    let (w1, w4) = (
        read_tensors(&one.join(ckpt)),
        read_tensors(&four.join(ckpt)),
    );
    for (name, t) in &w1 {
        // A key bias shifts every logit of a query alike, so softmax cancels it: its true
        // gradient is 0 and Adam turns the rounding noise into lr-sized steps either way.
        if name.ends_with("k_proj.bias") {
            continue;
        }
        let diff = max_abs_diff(t, &w4[name]);
        assert!(diff <= 1e-4, "{name} differs by {diff:e} after 3 steps");
    }
}

#[test]
fn siglip_micro_batches_train_as_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path(), "");
    micro_batches_train_as_the_whole_batch(dir.path(), cfg.to_str().unwrap());
}

#[test]
fn pali_micro_batches_train_as_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = crate::pali::pali_config(dir.path());
    micro_batches_train_as_the_whole_batch(dir.path(), cfg.to_str().unwrap());
}

#[test]
fn accum_steps_that_do_not_divide_the_batch_are_refused_with_both_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path(), "");
    let out = palisade(
        dir.path(),
        &[
            "train",
            cfg.to_str().unwrap(),
            "--set",
            "train.accum_steps=3",
            "--no-progress",
        ],
    );
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("key train.accum_steps: 3 does not divide the 16 examples per rank"),
        "{t}"
    );
    assert!(
        !dir.path().join("runs").exists() && !t.contains("panicked"),
        "{t}"
    );
}
