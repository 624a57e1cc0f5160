//! Bad input gets a clear error naming what and where, a non-zero exit, and nothing lost.

use crate::common::*;

fn fails_with(out: &std::process::Output, needles: &[&str]) {
    assert!(!out.status.success(), "expected failure:\n{}", text(out));
    let t = text(out);
    for n in needles {
        assert!(t.contains(n), "error should mention {n:?}:\n{t}");
    }
    assert!(!t.contains("panicked"), "no panics:\n{t}");
}

#[test]
fn unknown_config_keys_are_named_with_their_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path(), "");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        format!("base: {}\ntrain: {{lrr: 0.1}}\n", cfg.display()),
    )
    .unwrap();
    fails_with(
        &palisade(dir.path(), &["train", bad.to_str().unwrap()]),
        &["key train.lrr", "bad.yaml", "unknown field"],
    );
    fails_with(
        &palisade(
            dir.path(),
            &[
                "train",
                cfg.to_str().unwrap(),
                "--set",
                "model.vision.depht=3",
            ],
        ),
        &["key model.vision.depht", "--set"],
    );
    fails_with(
        &palisade(
            dir.path(),
            &["train", cfg.to_str().unwrap(), "--set", "train.lr=fast"],
        ),
        &["key train.lr"],
    );
    fails_with(
        &palisade(
            dir.path(),
            &["train", dir.path().join("missing.yaml").to_str().unwrap()],
        ),
        &["missing.yaml"],
    );
}

#[test]
fn a_corrupt_shard_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = tiny_config(d, "");
    // Generate the data, then drop a non-Parquet file among the training shards.
    palisade_ok(
        d,
        &[
            "train",
            cfg.to_str().unwrap(),
            "--run-dir",
            d.join("ok").to_str().unwrap(),
            "--no-progress",
            "--set",
            "train.steps=2",
            "--set",
            "train.warmup_steps=0",
        ],
    );
    std::fs::write(
        d.join("data/train/zz-broken.parquet"),
        b"this is not parquet",
    )
    .unwrap();
    fails_with(
        &palisade(
            d,
            &[
                "train",
                cfg.to_str().unwrap(),
                "--run-dir",
                d.join("run").to_str().unwrap(),
                "--no-progress",
            ],
        ),
        &["zz-broken.parquet"],
    );
}

#[test]
fn a_failed_resume_leaves_checkpoints_intact() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = tiny_config(d, "");
    let run = d.join("run");
    palisade_ok(
        d,
        &[
            "train",
            cfg.to_str().unwrap(),
            "--run-dir",
            run.to_str().unwrap(),
            "--no-progress",
            "--stop-at-step",
            "4",
        ],
    );
    // Every checkpoint broken: a newer broken one alone is passed over (tests/e2e/reliability.rs).
    for step in ["step-00000002", "step-00000004"] {
        let opt = run
            .join("checkpoints")
            .join(step)
            .join("optimizer.safetensors");
        std::fs::write(&opt, b"truncated").unwrap();
    }
    let metrics_before = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    fails_with(
        &palisade(
            d,
            &[
                "train",
                cfg.to_str().unwrap(),
                "--run-dir",
                run.to_str().unwrap(),
                "--no-progress",
                "--resume",
            ],
        ),
        &["optimizer.safetensors", "no checkpoint here is valid"],
    );
    assert!(run
        .join("checkpoints/step-00000002/model.safetensors")
        .exists());
    assert!(run
        .join("checkpoints/step-00000004/model.safetensors")
        .exists());
    assert_eq!(
        std::fs::read_to_string(run.join("metrics.jsonl")).unwrap(),
        metrics_before
    );
}

#[test]
fn a_checkpoint_that_does_not_fit_names_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A copy of the shared run's checkpoint, whose config this test edits.
    let ckpt = d.join("ckpt");
    copy_dir(&trained_run().run.join("checkpoints/step-00000006"), &ckpt);
    let cfg_path = ckpt.join("config.json");
    let text_cfg = std::fs::read_to_string(&cfg_path).unwrap().replace(
        "\"max_position_embeddings\": 12",
        "\"max_position_embeddings\": 20",
    );
    std::fs::write(&cfg_path, text_cfg).unwrap();
    let inputs = d.join("in.safetensors");
    tch::Tensor::write_safetensors(
        &[(
            "input_ids",
            tch::Tensor::zeros([1, 4], (tch::Kind::Int64, tch::Device::Cpu)),
        )],
        &inputs,
    )
    .unwrap();
    fails_with(
        &palisade(
            d,
            &[
                "forward",
                "--checkpoint",
                ckpt.to_str().unwrap(),
                "--inputs",
                inputs.to_str().unwrap(),
                "--out",
                d.join("o.safetensors").to_str().unwrap(),
            ],
        ),
        &[
            "text_model.embeddings.position_embedding.weight",
            "model.safetensors",
            "[12, 32]",
        ],
    );
    // Inputs of the wrong shape are named too.
    std::fs::write(
        &cfg_path,
        std::fs::read_to_string(&cfg_path).unwrap().replace(
            "\"max_position_embeddings\": 20",
            "\"max_position_embeddings\": 12",
        ),
    )
    .unwrap();
    tch::Tensor::write_safetensors(
        &[(
            "pixel_values",
            tch::Tensor::zeros([1, 3, 8, 8], (tch::Kind::Float, tch::Device::Cpu)),
        )],
        &inputs,
    )
    .unwrap();
    fails_with(
        &palisade(
            d,
            &[
                "forward",
                "--checkpoint",
                ckpt.to_str().unwrap(),
                "--inputs",
                inputs.to_str().unwrap(),
                "--out",
                d.join("o.safetensors").to_str().unwrap(),
            ],
        ),
        &["pixel_values", "[1, 3, 8, 8]"],
    );
}

#[test]
fn a_multi_rank_launch_is_refused_not_run_alone() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path(), "");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["train", cfg.to_str().unwrap(), "--no-progress"])
        .current_dir(dir.path())
        .env("OMPI_COMM_WORLD_RANK", "1")
        .env("OMPI_COMM_WORLD_SIZE", "2")
        .output()
        .unwrap();
    fails_with(&out, &["rank 1 of 2", "openmpi"]);
}
