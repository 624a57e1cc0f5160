//! Training end to end on tiny synthetic data: TensorBoard's reader, exact resume, reports.

use crate::common::*;
use std::collections::BTreeMap;
use std::path::Path;

#[test]
fn tensorboard_reader_loads_the_logged_scalars() {
    let run = &trained_run().run;
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
fn a_run_writes_its_config_checkpoints_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let trained = trained_run();
    let (cfg, run, stdout) = (&trained.cfg, &trained.run, &trained.stdout);
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

/// Trains `cfg` with `extra` arguments into the run folder `d/name`, straight through.
fn train_into(d: &Path, cfg: &str, name: &str, extra: &[&str]) -> std::path::PathBuf {
    let run = d.join(name);
    let mut args = vec![
        "train",
        cfg,
        "--run-dir",
        run.to_str().unwrap(),
        "--no-progress",
    ];
    args.extend(extra);
    palisade_ok(d, &args);
    run
}

fn state(run: &Path, step: &str) -> serde_json::Value {
    let p = run.join("checkpoints").join(step).join("state.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// One interrupted run through every stateful part of the input path — augmentation (a crop
/// and flip drawn per row and epoch), a 40-row shuffle buffer sliding through the 192-row
/// epoch, batches read 3 ahead on a thread — stopped mid-epoch between checkpoints and resumed,
/// ends where the uninterrupted run does.
#[test]
fn interrupted_runs_resume_exactly_through_augmentation_and_prefetch() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = tiny_config(d, "");
    let cfg = cfg.to_str().unwrap();
    let aug = "data.augment={crop_scale: [0.3, 1.0], flip: true, resize: bicubic}";
    let knobs = [
        "--set",
        aug,
        "--set",
        "data.shuffle_buffer=40",
        "--set",
        "data.prefetch=3",
    ];
    let a = train_into(d, cfg, "a", &knobs);
    // B is stopped after step 3 (between checkpoints), then resumed.
    let mut stop = knobs.to_vec();
    stop.extend(["--stop-at-step", "3"]);
    let b = train_into(d, cfg, "b", &stop);
    assert!(b.join("checkpoints/step-00000003").exists());
    assert!(
        !b.join("report/eval.json").exists(),
        "a stopped run does not report"
    );
    // The saved position is what the steps consumed: 3 batches of 16, through the buffer.
    let stopped = state(&b, "step-00000003");
    assert_eq!(
        stopped["data_cursors"][0]["shuffled"],
        serde_json::json!({"buffer": 40, "taken": 48}),
        "{stopped}"
    );
    // Without --resume an existing run is refused, and left as it was.
    let mut again = vec![
        "train",
        cfg,
        "--run-dir",
        b.to_str().unwrap(),
        "--no-progress",
    ];
    again.extend(knobs);
    let refused = palisade(d, &again);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("--resume"), "{}", text(&refused));
    again.push("--resume");
    palisade_ok(d, &again);

    let last = "checkpoints/step-00000006";
    for file in ["model.safetensors", "optimizer.safetensors"] {
        same_tensors(&a.join(last).join(file), &b.join(last).join(file), file);
    }
    let (sa, sb) = (state(&a, "step-00000006"), state(&b, "step-00000006"));
    assert_eq!(sa["data_cursors"], sb["data_cursors"]);
    assert_eq!(sa["examples_seen"], sb["examples_seen"]);
    // Each step is logged once, with the same losses as the uninterrupted run.
    let (la, lb) = (
        train_steps(&a.join("metrics.jsonl")),
        train_steps(&b.join("metrics.jsonl")),
    );
    assert_eq!(la.len(), 6);
    assert_eq!(
        la.iter().map(|x| x.0).collect::<Vec<_>>(),
        lb.iter().map(|x| x.0).collect::<Vec<_>>()
    );
    for ((s, x), (_, y)) in la.iter().zip(&lb) {
        assert!((x - y).abs() < 1e-5, "step {s}: loss {x} vs {y}");
    }

    // Prefetching changes nothing but timing: the same run read in the step's thread agrees.
    let mut unprefetched = knobs.to_vec();
    unprefetched[5] = "data.prefetch=0";
    let c = train_into(d, cfg, "c", &unprefetched);
    same_tensors(
        &a.join(last).join("model.safetensors"),
        &c.join(last).join("model.safetensors"),
        "prefetch 3 vs 0",
    );
    let lc = train_steps(&c.join("metrics.jsonl"));
    assert_eq!(la.len(), lc.len());
    for ((s, x), (_, y)) in la.iter().zip(&lc) {
        assert!((x - y).abs() < 1e-6, "step {s}: {x} vs {y}");
    }
    // Augmentation changes what the model sees: the losses differ from the same run without it.
    let plain = train_into(d, cfg, "plain", &unprefetched[2..]);
    let lp = train_steps(&plain.join("metrics.jsonl"));
    assert!(lc
        .iter()
        .zip(&lp)
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

/// big_vision's Adafactor with an rsqrt schedule and cool-down, the ViT frozen by regex and the
/// text tower at half the learning rate: trains, keeps the frozen tensors as they were, and
/// resumes exactly (Adafactor's factored state goes through the checkpoint).
#[test]
fn adafactor_rsqrt_freezing_and_lr_mults_train_and_resume_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = tiny_config(d, "");
    let sets = [
        "--set",
        "train.optimizer=adafactor",
        "--set",
        "train.adafactor={min_dim_size_to_factor: 8}",
        "--set",
        "train.schedule=rsqrt",
        "--set",
        "train.timescale=3",
        "--set",
        "train.cooldown_steps=2",
        "--set",
        r#"train.freeze=["vision_model\\..*"]"#,
        "--set",
        r#"train.lr_mults={"text_model\\..*": 0.5}"#,
    ];
    let (a, b) = straight_and_resumed(d, cfg.to_str().unwrap(), 3, &sets);
    let last = "checkpoints/step-00000006";
    for file in ["model.safetensors", "optimizer.safetensors"] {
        same_tensors(&a.join(last).join(file), &b.join(last).join(file), file);
    }
    let opt = read_tensors(&a.join(last).join("optimizer.safetensors"));
    assert!(
        opt.keys().any(|k| k.starts_with("v_row.text_model.")),
        "factored state"
    );
    assert!(
        !opt.keys().any(|k| k.contains("vision_model.")),
        "frozen: no state"
    );
    let (early, late) = (
        read_tensors(&a.join("checkpoints/step-00000004/model.safetensors")),
        read_tensors(&a.join(last).join("model.safetensors")),
    );
    let mut moved = 0;
    for (k, t) in &late {
        let diff = max_abs_diff(t, &early[k]);
        if k.starts_with("vision_model.") {
            assert_eq!(diff, 0.0, "{k} is frozen");
        } else if diff > 0.0 {
            moved += 1;
        }
    }
    assert!(moved > 5, "the text tower trains");
    let bad = palisade(
        d,
        &[
            "train",
            cfg.to_str().unwrap(),
            "--set",
            r#"train.freeze=["nothing\\..*"]"#,
        ],
    );
    assert!(
        text(&bad).contains("matches no parameter"),
        "{}",
        text(&bad)
    );
}

/// An exponential moving average of the weights: saved in every checkpoint beside the raw
/// weights, restored on resume (an interrupted run ends with the same average), and evaluated
/// into report/ema/ and metrics.jsonl's `eval_ema` lines.
#[test]
fn the_weights_moving_average_is_saved_resumed_and_evaluated() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = tiny_config(d, "");
    let sets = ["--set", "train.ema_decay=0.8"];
    let (a, b) = straight_and_resumed(d, cfg.to_str().unwrap(), 3, &sets);
    let last = a.join("checkpoints/step-00000006");
    same_tensors(
        &last.join("ema.safetensors"),
        &b.join("checkpoints/step-00000006/ema.safetensors"),
        "ema",
    );
    let (ema, raw) = (
        read_tensors(&last.join("ema.safetensors")),
        read_tensors(&last.join("model.safetensors")),
    );
    assert_eq!(
        ema.keys().collect::<Vec<_>>(),
        raw.keys().collect::<Vec<_>>()
    );
    let moved = ema
        .iter()
        .filter(|(k, t)| max_abs_diff(t, &raw[*k]) > 0.0)
        .count();
    assert!(moved > 5, "the average lags the weights");
    assert!(a.join("report/ema/eval.json").exists());
    let metrics = std::fs::read_to_string(a.join("metrics.jsonl")).unwrap();
    assert!(metrics.contains("\"split\":\"eval_ema\""), "{metrics}");
}
