//! Every subcommand answers --help.

use crate::common::*;

#[test]
fn every_subcommand_has_help() {
    let cwd = std::env::temp_dir();
    for args in [
        vec!["--help"],
        vec!["train", "--help"],
        vec!["eval", "--help"],
        vec!["data", "--help"],
        vec!["data", "synth", "shapes", "--help"],
        vec!["data", "synth", "video", "--help"],
        vec!["import", "hf-siglip", "--help"],
        vec!["forward", "--help"],
        vec!["bench", "train-step", "--help"],
        vec!["bench", "decode", "--help"],
        vec!["bench", "data", "--help"],
        vec!["pali", "init", "--help"],
        vec!["predict", "--help"],
        vec!["report", "--help"],
        vec!["launch", "--help"],
        vec!["data", "inspect", "--help"],
        vec!["doctor", "--help"],
        vec!["bench", "pali-train-step", "--help"],
    ] {
        let out = palisade_ok(&cwd, &args);
        assert!(out.contains("Usage: palisade"), "{args:?}: {out}");
    }
}

#[test]
fn doctor_names_the_pytorch_it_was_built_for_and_runs_on() {
    let cwd = std::env::temp_dir();
    let out = palisade_ok(&cwd, &["doctor", "--json"]);
    let d: serde_json::Value = serde_json::from_str(&out).unwrap();
    let built = d["built_for_torch"].as_str().unwrap_or_default();
    let found = d["libtorch_version"].as_str().unwrap_or_default();
    assert!(built.starts_with("2."), "{d}");
    // The start-up check lets a binary run only on its own PyTorch release.
    assert_eq!(
        built.rsplit_once('.').unwrap().0,
        found.rsplit_once('.').unwrap().0,
        "{d}"
    );
    assert!(d["libtorch_dir"].as_str().unwrap().ends_with("/lib"), "{d}");
    // A CUDA wheel's libtorch_cuda loads on demand (a GPU or not), registering CUDA.
    let dir = std::path::PathBuf::from(d["libtorch_dir"].as_str().unwrap());
    if dir.join("libtorch_cuda.so").exists() {
        assert!(d["cuda_error"].is_null(), "{d}");
    } else {
        assert!(
            d["cuda_error"].as_str().unwrap().contains("CPU-only"),
            "{d}"
        );
    }
    // NCCL loads from the wheel, or the error names the candidates it tried.
    match d["nccl_version"].as_str() {
        Some(v) => assert!(v.starts_with("2."), "{d}"),
        None => assert!(
            d["nccl_error"].as_str().unwrap().contains("libnccl.so.2"),
            "{d}"
        ),
    }
    // A PALISADE_NCCL_LIB that does not exist is named, not replaced by the wheel's.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["doctor"])
        .env("PALISADE_NCCL_LIB", "/nonexistent/libnccl.so.2")
        .output()
        .unwrap();
    let text = text(&out);
    assert!(
        out.status.success()
            && text.contains("not loaded")
            && text.contains("/nonexistent/libnccl.so.2"),
        "{text}"
    );
}

#[test]
fn synth_shapes_writes_shards_and_a_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("shapes");
    let stdout = palisade_ok(
        dir.path(),
        &[
            "data",
            "synth",
            "shapes",
            "--out",
            out.to_str().unwrap(),
            "--rows",
            "50",
            "--rows-per-shard",
            "20",
            "--image-size",
            "16",
        ],
    );
    assert!(stdout.contains("wrote 50 rows in 3 shards"), "{stdout}");
    assert!(out.join("tokenizer.json").exists());
}

#[test]
fn synth_tasks_and_inspect_agree_on_specs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tasks");
    let stdout = palisade_ok(
        dir.path(),
        &[
            "data",
            "synth",
            "tasks",
            "--out",
            out.to_str().unwrap(),
            "--rows",
            "30",
            "--image-size",
            "16",
        ],
    );
    assert!(stdout.contains("caption: 30 rows"), "{stdout}");
    for task in ["caption", "vqa", "refcoco"] {
        let pattern = format!("{}/{task}/*.parquet", out.display());
        let json = palisade_ok(
            dir.path(),
            &["data", "inspect", &pattern, "--json", "--strict"],
        );
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["spec"], task);
        assert_eq!(v["bad_count"], 0);
    }
    // Against a spec the shards do not meet: a non-zero exit naming the column.
    let o = palisade(
        dir.path(),
        &[
            "data",
            "inspect",
            &format!("{}/caption/*.parquet", out.display()),
            "--spec",
            "vqa",
        ],
    );
    assert!(
        !o.status.success() && text(&o).contains("question"),
        "{}",
        text(&o)
    );
}

#[test]
fn synth_video_writes_shards_that_inspect_calls_video() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("video");
    let stdout = palisade_ok(
        dir.path(),
        &[
            "data",
            "synth",
            "video",
            "--out",
            out.to_str().unwrap(),
            "--rows",
            "12",
            "--frames",
            "4",
            "--image-size",
            "16",
            "--max-objects",
            "2",
        ],
    );
    assert!(stdout.contains("caption: 12 rows (spec video)"), "{stdout}");
    assert!(out.join("tokenizer.json").exists());
    for task in ["caption", "vqa"] {
        let pattern = format!("{}/{task}/*.parquet", out.display());
        let json = palisade_ok(
            dir.path(),
            &["data", "inspect", &pattern, "--json", "--strict"],
        );
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            (v["spec"].as_str(), v["bad_count"].as_u64()),
            (Some("video"), Some(0))
        );
        let frames = v["samples"][0]["frames"].as_str().unwrap();
        assert!(frames.contains("first 16×16"), "{frames}");
    }
}
