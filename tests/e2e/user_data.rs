//! Datasets as users have them, trained through `columns:` mapping: img2dataset output (jpg /
//! caption / key / status, no lang, failed downloads skipped and counted) and a Hugging Face
//! `datasets` dataset with an Image column (struct {bytes, path}, some rows by file path),
//! both written by the Python tools themselves (tests/oracles/write_user_datasets.py).

use crate::common::*;
use std::path::Path;

/// `palisade train` of the tiny config into `d/name` with `sets`.
fn train(d: &Path, cfg: &Path, name: &str, sets: &[String]) -> std::process::Output {
    let run = d.join(name);
    let mut args = vec![
        "train".to_string(),
        cfg.display().to_string(),
        "--run-dir".into(),
        run.display().to_string(),
        "--no-progress".into(),
    ];
    for s in sets {
        args.extend(["--set".into(), s.clone()]);
    }
    palisade(d, &args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn img2dataset_and_hugging_face_shards_train_through_the_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = tiny_config(d, "");
    let local = train(d, &cfg, "local", &[]);
    assert!(local.status.success(), "{}", text(&local));
    for split in ["train", "eval"] {
        let src = d.join("data").join(split);
        let out = d.join("user").join(split);
        let printed = oracle(
            "write_user_datasets.py",
            &[src.to_str().unwrap(), out.to_str().unwrap()],
        );
        assert!(printed.contains("\"failed\""), "{printed}");
    }
    let shards = |kind: &str, split: &str| {
        format!("data.{split}={}/user/{split}/{kind}/*.parquet", d.display())
    };
    let from = |kind: &str| {
        vec![
            shards(kind, "train"),
            shards(kind, "eval"),
            "data.synth=null".into(),
        ]
    };

    // Hugging Face Image structs, some by path: the same rows, so the same run.
    let hf = train(d, &cfg, "hf", &from("hf"));
    assert!(hf.status.success(), "{}", text(&hf));
    assert_eq!(
        train_steps(&d.join("local/metrics.jsonl")),
        train_steps(&d.join("hf/metrics.jsonl")),
        "every loss equal to the original shards'"
    );

    // img2dataset: mapped columns, no lang, failed downloads skipped and counted.
    let mut sets = from("img2dataset");
    sets.extend([
        "data.columns.image=jpg".into(),
        "data.columns.text=caption".into(),
        "data.columns.id=key".into(),
    ]);
    let i2d = train(d, &cfg, "i2d", &sets);
    assert!(i2d.status.success(), "{}", text(&i2d));
    let skipped: f64 = std::fs::read_to_string(d.join("i2d/metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|v| v["train/skipped_examples"].as_f64())
        .fold(0.0, f64::max);
    assert!(skipped > 0.0, "failed downloads are counted as skipped");
    assert!(d.join("i2d/report/eval.json").exists());

    let inspected = palisade_ok(
        d,
        &[
            "data",
            "inspect",
            &format!("{}/user/train/img2dataset/*.parquet", d.display()),
            "--spec",
            "webli",
            "--columns",
            "image=jpg,text=caption,id=key",
            "--strict",
        ],
    );
    assert!(inspected.contains("bad rows: 0"), "{inspected}");
    assert!(inspected.contains("not downloaded"), "{inspected}");

    // Mapping mistakes are named before training starts.
    for (set, needle) in [
        ("data.columns.image=jpeg", "\"jpeg\""),
        (
            "data.columns.image=url",
            "has type Utf8 but spec \"webli\" wants binary",
        ),
        ("data.columns.imagex=jpg", "has no column \"imagex\""),
    ] {
        let mut bad = from("img2dataset");
        bad.extend(["data.columns.text=caption".into(), set.into()]);
        let out = train(d, &cfg, "bad", &bad);
        let t = text(&out);
        assert!(!out.status.success(), "{set}: {t}");
        assert!(t.contains(needle), "{set} should mention {needle}:\n{t}");
        if set.ends_with("jpeg") {
            assert!(
                t.contains("key, jpg, caption"),
                "lists the columns there are: {t}"
            );
        }
        assert!(
            !d.join("bad/checkpoints").exists(),
            "{set}: nothing trained"
        );
    }
}
