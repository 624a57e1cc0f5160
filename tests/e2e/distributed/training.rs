//! Data-parallel training: 2 and 4 ranks (under mpirun or `palisade launch`) end where one
//! process at the same global batch ends.

use super::ranks;
use crate::common::*;
use palisade_sharding::mpi_harness::mpirun;
use std::path::Path;

/// Train losses from metrics.jsonl, by step.
fn losses(run: &Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .expect("metrics.jsonl")
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON line"))
        .filter(|v| v["split"] == "train")
        .map(|v| {
            (
                v["step"].as_u64().unwrap(),
                v["train/loss"].as_f64().unwrap(),
            )
        })
        .collect()
}

pub(crate) fn last_checkpoint(run: &Path) -> std::path::PathBuf {
    let mut dirs: Vec<_> = std::fs::read_dir(run.join("checkpoints"))
        .expect("checkpoints")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("step-")
        })
        .collect();
    dirs.sort();
    dirs.pop().expect("a checkpoint")
}

/// The largest gap between two sets of the same tensors (name and size), leaving out what
/// rounding alone moves: key biases have a zero gradient in exact arithmetic (softmax ignores
/// a shift shared by all keys), and Adam scales their rounding noise up to lr-sized steps, so
/// they differ between any two summation orders, not only between world sizes.
pub(crate) fn worst_gap(
    want: &std::collections::BTreeMap<String, tch::Tensor>,
    got: &std::collections::BTreeMap<String, tch::Tensor>,
) -> (f64, String) {
    let mut worst = (0.0f64, String::new());
    for (name, t) in want {
        if name.ends_with("k_proj.bias") {
            continue;
        }
        let diff = if name.ends_with("in_proj_bias") {
            // Packed [q; k; v] biases: compare q and v.
            let third = t.size()[0] / 3;
            let qv = |x: &tch::Tensor| {
                tch::Tensor::cat(&[x.narrow(0, 0, third), x.narrow(0, 2 * third, third)], 0)
            };
            max_abs_diff(&qv(t), &qv(&got[name]))
        } else {
            max_abs_diff(t, &got[name])
        };
        if diff > worst.0 {
            worst = (diff, name.clone());
        }
    }
    worst
}

/// Asserts that `run` ended at step 6 with the model and per-step losses of `one` (within 1e-4);
/// returns its last checkpoint.
pub(crate) fn assert_ends_as(one: &Path, run: &Path, label: &str) -> std::path::PathBuf {
    let want = read_tensors(&last_checkpoint(one).join("model.safetensors"));
    let ckpt = last_checkpoint(run);
    assert_eq!(ckpt, run.join("checkpoints/step-00000006"), "{label}");
    let got = read_tensors(&ckpt.join("model.safetensors"));
    assert_eq!(got.len(), want.len(), "{label}");
    let worst = worst_gap(&want, &got);
    assert!(
        worst.0 < 1e-4,
        "{label}: {} differs by {}",
        worst.1,
        worst.0
    );
    // Rank 0 alone logs the global loss, once per step.
    let (want_loss, got_loss) = (losses(one), losses(run));
    assert_eq!(got_loss.len(), want_loss.len(), "{label}");
    for ((s1, a), (s2, b)) in want_loss.iter().zip(&got_loss) {
        assert_eq!(s1, s2);
        assert!((a - b).abs() < 1e-4, "{label}, step {s1}: loss {b} vs {a}");
    }
    ckpt
}

/// `palisade train CFG --run-dir RUN --no-progress` on `w` ranks under mpirun, in `d`.
pub(crate) fn mpirun_train(w: usize, d: &Path, cfg: &str, run: &Path) -> std::process::Command {
    let mut cmd = mpirun(w);
    cmd.arg(env!("CARGO_BIN_EXE_palisade"))
        .current_dir(d)
        .env("RUST_LOG", "warn")
        .args([
            "train",
            cfg,
            "--run-dir",
            run.to_str().unwrap(),
            "--no-progress",
        ]);
    cmd
}

/// Training data for `tiny_config(d, …)`: 64 rows in row groups of 4 (so up to 16 ranks get
/// rows), and its tokenizer.
pub(crate) fn synth_small_row_groups(d: &Path) {
    palisade_ok(
        d,
        &[
            "data",
            "synth",
            "shapes",
            "--out",
            d.join("data/train").to_str().unwrap(),
            "--rows",
            "64",
            "--rows-per-group",
            "4",
            "--image-size",
            "16",
            "--max-objects",
            "1",
            "--vocab-size",
            "64",
        ],
    );
    std::fs::rename(
        d.join("data/train/tokenizer.json"),
        d.join("data/tokenizer.json"),
    )
    .unwrap();
}

#[test]
fn two_and_four_ranks_match_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 64 rows in row groups of 4, unshuffled: a global batch of 16 is units 4k..4k+3 on one
    // process, and the same four units split over 2 or 4 ranks (rank r reads units r, r+W, …).
    synth_small_row_groups(d);
    let cfg = tiny_config(d, "");
    let cfg = cfg.to_str().unwrap();
    let common = ["--set", "data.shuffle=false", "--no-progress"];
    let one = d.join("run-1");
    let mut args = vec!["train", cfg, "--run-dir", one.to_str().unwrap()];
    args.extend(common);
    palisade_ok(d, &args);
    // Ranks under mpirun (MPI backend) and under `palisade launch` (TCP backend).
    let on_ranks = |how: &str, w: usize, run: &Path, extra: &[&str]| {
        let mut cmd = if how == "mpirun" {
            let mut c = mpirun(w);
            c.arg(env!("CARGO_BIN_EXE_palisade"));
            c
        } else {
            let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_palisade"));
            c.args(["launch", "--nproc-per-node", &w.to_string(), "--"]);
            c
        };
        cmd.current_dir(d)
            .env("RUST_LOG", "warn")
            .args(["train", cfg, "--run-dir", run.to_str().unwrap()])
            .args(common)
            .args(extra);
        ranks::run(cmd, &format!("palisade train, {how} {w} ranks {extra:?}"));
    };
    let runs = [
        ("mpirun", 2usize),
        ("mpirun", 4),
        ("launch", 2),
        ("launch", 4),
    ];
    let run_dir = |how: &str, w: usize| d.join(format!("run-{how}-{w}"));
    for (how, w) in runs {
        on_ranks(how, w, &run_dir(how, w), &[]);
    }
    // Two ranks stopped at step 4 and resumed (each from its own cursor) end bit-identical.
    let resumed = d.join("run2-resumed");
    on_ranks("mpirun", 2, &resumed, &["--stop-at-step", "4"]);
    on_ranks("mpirun", 2, &resumed, &["--resume"]);
    let a = read_tensors(&last_checkpoint(&run_dir("mpirun", 2)).join("model.safetensors"));
    let b = read_tensors(&last_checkpoint(&resumed).join("model.safetensors"));
    for (name, t) in &a {
        assert_eq!(max_abs_diff(t, &b[name]), 0.0, "resumed on 2 ranks: {name}");
    }
    // Four ranks stopped at step 3 and resumed on two: the rest of the epoch is dealt out again,
    // so every step still sees the global batch one process sees (compared below).
    on_ranks(
        "mpirun",
        4,
        &run_dir("resharded", 2),
        &["--stop-at-step", "3"],
    );
    on_ranks("mpirun", 2, &run_dir("resharded", 2), &["--resume"]);
    // Optimizer state sharded (ZeRO-1) over 2 and 4 ranks; and 4 sharded ranks stopped at step
    // 3, resumed on 2 without sharding from the consolidated optimizer file.
    let shard = ["--set", "parallel.shard=optimizer"];
    on_ranks("mpirun", 2, &run_dir("zero", 2), &shard);
    on_ranks("launch", 4, &run_dir("zero", 4), &shard);
    let stop: Vec<&str> = shard
        .iter()
        .copied()
        .chain(["--stop-at-step", "3"])
        .collect();
    on_ranks("mpirun", 4, &run_dir("zero-resumed", 2), &stop);
    on_ranks("mpirun", 2, &run_dir("zero-resumed", 2), &["--resume"]);
    // Exact accumulation with the ring loss across ranks: 2 ranks × 2 micro-batches of 4.
    on_ranks(
        "mpirun",
        2,
        &run_dir("accum", 2),
        &["--set", "train.accum_steps=2"],
    );
    // All three together, as a big run would: sharded state, exact accumulation, remat.
    on_ranks(
        "mpirun",
        2,
        &run_dir("zero-accum-remat", 2),
        &[
            "--set",
            "parallel.shard=optimizer",
            "--set",
            "train.accum_steps=2",
            "--set",
            "train.remat=blocks",
        ],
    );
    // Parameters sharded too (FSDP), per remat segment, with exact accumulation; and 4 such
    // ranks stopped at step 3, resumed on 2 unsharded without remat (full → none, 4 → 2).
    let full = [
        "--set",
        "parallel.shard=full",
        "--set",
        "train.remat=blocks",
    ];
    let accum: Vec<&str> = full
        .iter()
        .copied()
        .chain(["--set", "train.accum_steps=2"])
        .collect();
    on_ranks("mpirun", 2, &run_dir("full-accum", 2), &accum);
    let stop: Vec<&str> = full
        .iter()
        .copied()
        .chain(["--stop-at-step", "3"])
        .collect();
    on_ranks("mpirun", 4, &run_dir("full-resumed", 2), &stop);
    on_ranks("mpirun", 2, &run_dir("full-resumed", 2), &["--resume"]);

    assert_eq!(losses(&one).len(), 6);
    let more = [
        ("resharded", 2),
        ("accum", 2),
        ("zero", 2),
        ("zero", 4),
        ("zero-resumed", 2),
        ("zero-accum-remat", 2),
        ("full-accum", 2),
        ("full-resumed", 2),
    ];
    for (how, w) in runs.into_iter().chain(more) {
        let run = run_dir(how, w);
        let ckpt = assert_ends_as(&one, &run, &format!("{how} {w} ranks"));
        // Every rank's data cursor is in the checkpoint.
        let state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(ckpt.join("state.json")).unwrap())
                .unwrap();
        assert_eq!(state["world_size"], w);
        assert_eq!(
            state["data_cursors"].as_array().unwrap().len(),
            w,
            "{state}"
        );
        assert!(
            run.join("report/eval.json").exists(),
            "rank 0 writes the report"
        );
    }
}

#[test]
fn ranks_with_different_configs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = tiny_config(d, "");
    let (cfg, exe) = (cfg.to_str().unwrap(), env!("CARGO_BIN_EXE_palisade"));
    // One rank per program block (MPMD): rank 1 overrides the learning rate.
    let out = std::process::Command::new("mpirun")
        .current_dir(d)
        .args(["--oversubscribe", "--bind-to", "none"])
        .args(["-np", "1", exe, "train", cfg, "--no-progress", ":"])
        .args([
            "-np",
            "1",
            exe,
            "train",
            cfg,
            "--no-progress",
            "--set",
            "train.lr=0.001",
        ])
        .output()
        .expect("mpirun runs");
    let text = text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("ranks disagree on the config") && text.contains("rank 1 has"),
        "{text}"
    );
    assert!(
        !d.join("runs/tiny/checkpoints").exists(),
        "nothing was trained"
    );
}

#[test]
fn sharded_optimizer_checkpoints_are_per_rank_files_consolidated_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    synth_small_row_groups(d);
    let cfg = tiny_config(d, "");
    let cfg = cfg.to_str().unwrap();
    let run = d.join("run");
    let train = |w: usize, extra: &[&str]| {
        let mut cmd = mpirun_train(w, d, cfg, &run);
        cmd.args(["--set", "data.shuffle=false", "--set", "train.eval_every=0"])
            .args(extra);
        cmd.output().expect("mpirun runs")
    };
    let out = train(
        4,
        &["--set", "parallel.shard=optimizer", "--stop-at-step", "2"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let ckpt = run.join("checkpoints/step-00000002");
    // Each rank wrote its own shard; rank 0 the index; nobody the whole file.
    for r in 1..=4 {
        assert!(ckpt
            .join(format!("optimizer-{r:05}-of-00004.safetensors"))
            .exists());
    }
    assert!(ckpt.join("optimizer.safetensors.index.json").exists());
    assert!(!ckpt.join("optimizer.safetensors").exists());
    let staging: Vec<_> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(staging.is_empty(), "staging left behind: {staging:?}");

    // Consolidated: one file holding every shard's entries, unchanged.
    let merged = d.join("merged");
    palisade_ok(
        d,
        &[
            "checkpoint",
            "consolidate",
            ckpt.to_str().unwrap(),
            "--out",
            merged.to_str().unwrap(),
        ],
    );
    let whole = read_tensors(&merged.join("optimizer.safetensors"));
    let mut n = 0;
    for r in 1..=4 {
        for (k, t) in read_tensors(&ckpt.join(format!("optimizer-{r:05}-of-00004.safetensors"))) {
            assert_eq!(max_abs_diff(&t, &whole[&k]), 0.0, "{k}");
            n += 1;
        }
    }
    assert_eq!(n, whole.len());
    same_tensors(
        &ckpt.join("model.safetensors"),
        &merged.join("model.safetensors"),
        "model",
    );

    // A missing shard is named, and nothing is overwritten.
    let shard3 = ckpt.join("optimizer-00003-of-00004.safetensors");
    let kept = d.join("shard3");
    std::fs::rename(&shard3, &kept).unwrap();
    let out = train(2, &["--resume"]);
    let t = text(&out);
    assert!(
        !out.status.success() && t.contains("optimizer-00003-of-00004.safetensors"),
        "{t}"
    );
    assert!(ckpt.join("optimizer-00001-of-00004.safetensors").exists());
    // The consolidated folder resumes on 2 ranks without sharding.
    std::fs::remove_dir_all(&ckpt).unwrap();
    std::fs::rename(&merged, &ckpt).unwrap();
    let out = train(2, &["--resume"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(run
        .join("checkpoints/step-00000006/optimizer.safetensors")
        .exists());
}
