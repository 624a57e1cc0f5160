//! Training end to end on tiny synthetic data: TensorBoard's reader, exact resume, reports.

use crate::common::*;
use std::collections::BTreeMap;
use std::path::Path;

fn train_steps(jsonl: &Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["split"] == "train")
        .map(|v| {
            (
                v["step"].as_u64().unwrap(),
                v["train/loss"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn tensorboard_reader_loads_the_logged_scalars() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path(), "");
    let run = dir.path().join("run");
    palisade_ok(
        dir.path(),
        &[
            "train",
            cfg.to_str().unwrap(),
            "--run-dir",
            run.to_str().unwrap(),
            "--no-progress",
        ],
    );
    let json = oracle("read_tensorboard.py", &[run.join("tb").to_str().unwrap()]);
    let scalars: BTreeMap<String, Vec<(u64, f64)>> = serde_json::from_str(&json).unwrap();
    for tag in [
        "train/loss",
        "train/lr",
        "train/temperature",
        "train/bias",
        "train/grad_norm",
        "train/examples_per_sec",
    ] {
        let series = scalars
            .get(tag)
            .unwrap_or_else(|| panic!("tag {tag} missing; have {:?}", scalars.keys()));
        assert_eq!(
            series.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5, 6],
            "{tag}"
        );
    }
    // The same numbers as metrics.jsonl (TensorBoard stores float32).
    for ((s1, a), (s2, b)) in scalars["train/loss"]
        .iter()
        .zip(train_steps(&run.join("metrics.jsonl")))
    {
        assert_eq!(*s1, s2);
        assert!(
            (a - b).abs() <= 1e-6 * b.abs().max(1.0),
            "step {s1}: {a} vs {b}"
        );
    }
    assert!(
        scalars.contains_key("eval/i2t_r@1"),
        "final evaluation is logged: {:?}",
        scalars.keys()
    );
    let temp = &scalars["train/temperature"];
    assert!(
        (temp[0].1 - 10.0).abs() < 0.1,
        "t' starts at log 10: {temp:?}"
    );
    let bias = &scalars["train/bias"];
    assert!((bias[0].1 + 10.0).abs() < 0.1, "b starts at −10: {bias:?}");
}

#[test]
fn interrupted_run_resumes_to_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = tiny_config(d, "");
    let cfg = cfg.to_str().unwrap();
    let (a, b) = (d.join("a"), d.join("b"));
    palisade_ok(
        d,
        &[
            "train",
            cfg,
            "--run-dir",
            a.to_str().unwrap(),
            "--no-progress",
        ],
    );
    // B is stopped mid-epoch after step 3 (between checkpoints), then resumed.
    palisade_ok(
        d,
        &[
            "train",
            cfg,
            "--run-dir",
            b.to_str().unwrap(),
            "--no-progress",
            "--stop-at-step",
            "3",
        ],
    );
    assert!(b.join("checkpoints/step-00000003").exists());
    assert!(
        !b.join("report/eval.json").exists(),
        "a stopped run does not report"
    );
    // Without --resume an existing run is refused, and left as it was.
    let again = palisade(
        d,
        &[
            "train",
            cfg,
            "--run-dir",
            b.to_str().unwrap(),
            "--no-progress",
        ],
    );
    assert!(!again.status.success());
    assert!(text(&again).contains("--resume"), "{}", text(&again));
    palisade_ok(
        d,
        &[
            "train",
            cfg,
            "--run-dir",
            b.to_str().unwrap(),
            "--no-progress",
            "--resume",
        ],
    );

    for file in ["model.safetensors", "optimizer.safetensors"] {
        let wa = read_tensors(&a.join("checkpoints/step-00000006").join(file));
        let wb = read_tensors(&b.join("checkpoints/step-00000006").join(file));
        assert_eq!(wa.keys().collect::<Vec<_>>(), wb.keys().collect::<Vec<_>>());
        for (name, t) in &wa {
            let diff = max_abs_diff(t, &wb[name]);
            assert!(
                diff <= 1e-6,
                "{file} {name} differs by {diff:e} after resume"
            );
        }
    }
    let sa: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(a.join("checkpoints/step-00000006/state.json")).unwrap(),
    )
    .unwrap();
    let sb: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(b.join("checkpoints/step-00000006/state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(sa["data_cursors"], sb["data_cursors"]);
    assert_eq!(sa["examples_seen"], sb["examples_seen"]);
    // Each step is logged once, with the same losses as the uninterrupted run.
    let (la, lb) = (
        train_steps(&a.join("metrics.jsonl")),
        train_steps(&b.join("metrics.jsonl")),
    );
    assert_eq!(
        la.iter().map(|x| x.0).collect::<Vec<_>>(),
        lb.iter().map(|x| x.0).collect::<Vec<_>>()
    );
    for ((s, x), (_, y)) in la.iter().zip(&lb) {
        assert!((x - y).abs() < 1e-5, "step {s}: loss {x} vs {y}");
    }
}

#[test]
fn a_run_writes_its_config_checkpoints_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = tiny_config(d, "");
    let run = d.join("run");
    let stdout = palisade_ok(
        d,
        &[
            "train",
            cfg.to_str().unwrap(),
            "--run-dir",
            run.to_str().unwrap(),
            "--no-progress",
            "--set",
            "train.keep_last=2",
        ],
    );
    assert!(stdout.contains("| image to text | R@1 |"), "{stdout}");
    let ckpts: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into())
        .collect();
    let mut ckpts = ckpts;
    ckpts.sort();
    assert_eq!(ckpts, vec!["step-00000004", "step-00000006"], "keep_last=2");
    for f in [
        "model.safetensors",
        "config.json",
        "optimizer.safetensors",
        "state.json",
        "experiment.yaml",
    ] {
        assert!(
            run.join("checkpoints/step-00000006").join(f).exists(),
            "{f}"
        );
    }
    // The resolved config in the run folder is a complete config: it loads and trains as is.
    let resolved = std::fs::read_to_string(run.join("config.yaml")).unwrap();
    assert!(
        resolved.contains("keep_last: 2") && !resolved.contains("base:"),
        "{resolved}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report/eval.json")).unwrap())
            .unwrap();
    assert_eq!(report["examples"], 64);
    let retrieval = report["retrieval"].as_array().unwrap();
    assert_eq!(retrieval.len(), 6);
    assert!(retrieval
        .iter()
        .all(|r| r["chance"].as_f64().unwrap() > 0.0));
    assert_eq!(report["zero_shot"].as_array().unwrap().len(), 2);
    // `palisade eval` reproduces the final numbers from the checkpoint.
    let ckpt = run.join("checkpoints/step-00000006");
    let out = d.join("again");
    palisade_ok(
        d,
        &[
            "eval",
            cfg.to_str().unwrap(),
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("eval.json")).unwrap()).unwrap();
    assert_eq!(again["retrieval"], report["retrieval"]);
    // On two ranks each embeds its share of a held-out set of four row groups; the gathered
    // embeddings give the numbers one process gives.
    palisade_ok(
        d,
        &[
            "data",
            "synth",
            "shapes",
            "--out",
            "held",
            "--rows",
            "64",
            "--rows-per-group",
            "16",
            "--image-size",
            "16",
            "--seed",
            "4",
        ],
    );
    let ck = ckpt.to_str().unwrap();
    let c = cfg.to_str().unwrap();
    let held = ["--set", "data.eval=held/*.parquet"];
    let mut one = vec!["eval", c, "--checkpoint", ck, "--out", "one"];
    one.extend(held);
    palisade_ok(d, &one);
    let mut two = vec![
        "launch",
        "--nproc-per-node",
        "2",
        "--",
        "eval",
        c,
        "--checkpoint",
        ck,
    ];
    two.extend(["--out", "two"]);
    two.extend(held);
    let printed = palisade_ok(d, &two);
    assert_eq!(
        printed.matches("## Retrieval").count(),
        1,
        "rank 0 alone prints: {printed}"
    );
    let read = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(d.join(f).join("eval.json")).unwrap())
            .unwrap()
    };
    let (a, b) = (read("one"), read("two"));
    assert_eq!(a["examples"], 64);
    assert_eq!(b["examples"], 64);
    for key in ["retrieval", "zero_shot"] {
        let (xa, xb) = (a[key].as_array().unwrap(), b[key].as_array().unwrap());
        assert_eq!(xa.len(), xb.len());
        for (ra, rb) in xa.iter().zip(xb) {
            let field = if key == "retrieval" {
                "recall"
            } else {
                "accuracy"
            };
            let (va, vb) = (ra[field].as_f64().unwrap(), rb[field].as_f64().unwrap());
            assert!((va - vb).abs() < 1e-12, "{ra} vs {rb}");
        }
    }
}

#[test]
fn augmented_runs_resume_exactly_too() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = tiny_config(d, "");
    let cfg = cfg.to_str().unwrap();
    let aug = [
        "--set",
        "data.augment={crop_scale: [0.3, 1.0], flip: true, resize: bicubic}",
    ];
    let (a, b) = straight_and_resumed(d, cfg, 3, &aug);
    let (la, lb) = (
        train_steps(&a.join("metrics.jsonl")),
        train_steps(&b.join("metrics.jsonl")),
    );
    assert_eq!(la.len(), 6);
    for ((s, x), (_, y)) in la.iter().zip(&lb) {
        assert!((x - y).abs() < 1e-5, "step {s}: {x} vs {y}");
    }
    // Augmentation changes what the model sees: the losses differ from an unaugmented run.
    let c = d.join("c");
    palisade_ok(
        d,
        &[
            "train",
            cfg,
            "--run-dir",
            c.to_str().unwrap(),
            "--no-progress",
        ],
    );
    let lc = train_steps(&c.join("metrics.jsonl"));
    assert!(la
        .iter()
        .zip(&lc)
        .skip(1)
        .any(|((_, x), (_, y))| (x - y).abs() > 1e-4));
    // A bad range is refused with its key.
    let o = palisade(
        d,
        &[
            "train",
            cfg,
            "--set",
            "data.augment={crop_scale: [0.9, 0.1]}",
        ],
    );
    assert!(
        !o.status.success() && text(&o).contains("data.augment"),
        "{}",
        text(&o)
    );
}

#[test]
fn prefetched_runs_through_a_shuffle_buffer_resume_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = tiny_config(d, "");
    let cfg = cfg.to_str().unwrap();
    // A buffer of 40 of the 192 rows slides through the epoch; batches are read 3 ahead.
    let buffered = [
        "--set",
        "data.shuffle_buffer=40",
        "--set",
        "data.prefetch=3",
    ];
    let (a, b) = straight_and_resumed(d, cfg, 3, &buffered);
    // The saved position is what the steps consumed: 3 batches of 16, through the buffer.
    let stopped: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(b.join("checkpoints/step-00000003/state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        stopped["data_cursors"][0]["shuffled"],
        serde_json::json!({"buffer": 40, "taken": 48}),
        "{stopped}"
    );
    let last = "checkpoints/step-00000006/model.safetensors";
    let (wa, wb) = (read_tensors(&a.join(last)), read_tensors(&b.join(last)));
    for (name, t) in &wa {
        assert!(
            max_abs_diff(t, &wb[name]) <= 1e-6,
            "{name} differs after resume"
        );
    }
    // Prefetching changes nothing but timing: the same run read in the step's thread agrees.
    let c = d.join("c");
    palisade_ok(
        d,
        &[
            "train",
            cfg,
            "--run-dir",
            c.to_str().unwrap(),
            "--no-progress",
            "--set",
            "data.shuffle_buffer=40",
            "--set",
            "data.prefetch=0",
        ],
    );
    let wc = read_tensors(&c.join(last));
    for (name, t) in &wa {
        assert!(
            max_abs_diff(t, &wc[name]) <= 1e-6,
            "{name}: prefetch 3 vs 0"
        );
    }
    let (la, lc) = (
        train_steps(&a.join("metrics.jsonl")),
        train_steps(&c.join("metrics.jsonl")),
    );
    assert_eq!(la.len(), lc.len());
    for ((s, x), (_, y)) in la.iter().zip(&lc) {
        assert!((x - y).abs() < 1e-6, "step {s}: {x} vs {y}");
    }
}
