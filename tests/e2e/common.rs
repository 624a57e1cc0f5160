//! Helpers: run the binary and the Python oracles, write small experiment configs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// Runs `palisade ARGS` in `cwd`.
pub fn palisade(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .output()
        .expect("palisade runs")
}

/// Runs palisade and asserts success, returning stdout.
pub fn palisade_ok(cwd: &Path, args: &[&str]) -> String {
    let out = palisade(cwd, args);
    assert!(
        out.status.success(),
        "palisade {args:?} failed:\n{}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// stdout and stderr together.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The oracle Python (the set-up's pinned-torch venv); tests that need it fail without it.
pub fn python() -> PathBuf {
    PathBuf::from(
        std::env::var("PALISADE_PYTHON")
            .expect("PALISADE_PYTHON is set by scripts/setup.sh's env.sh"),
    )
}

/// Runs `tests/oracles/SCRIPT ARGS` and returns stdout.
pub fn oracle(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg(repo().join("tests/oracles").join(script))
        .args(args)
        .output()
        .expect("python runs");
    assert!(out.status.success(), "{script} failed:\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Writes a small experiment config in `dir` inheriting the demo config, with its data in `dir`.
pub fn tiny_config(dir: &Path, extra: &str) -> PathBuf {
    let demo = repo().join("configs/demo/siglip_shapes.yaml");
    let d = dir.display();
    let yaml = format!(
        "base: {}\nname: tiny\nthreads: 1\n\
         data:\n  train: {d}/data/train/*.parquet\n  eval: {d}/data/eval/*.parquet\n  tokenizer: {d}/data/tokenizer.json\n  threads: 1\n\
         \x20 synth: {{train_dir: {d}/data/train, eval_dir: {d}/data/eval, train_rows: 192, eval_rows: 64, image_size: 16, vocab_size: 64}}\n\
         model:\n  vision: {{preset: mu, image_size: 16, patch_size: 8}}\n  text: {{preset: mu, max_len: 12}}\n\
         train: {{batch_size: 16, steps: 6, warmup_steps: 2, log_every: 1, checkpoint_every: 2, keep_last: 5, eval_every: 0}}\n\
         eval: {{batch_size: 32}}\n{extra}",
        demo.display()
    );
    let path = dir.join("tiny.yaml");
    std::fs::write(&path, yaml).expect("write config");
    path
}

/// A tiny SigLIP run (`tiny_config`, 6 steps, checkpoints at 4 and 6) trained once per test
/// binary, for the tests that only read a trained run; a test that changes its files copies
/// them first.
pub struct TrainedRun {
    /// The folder holding the data, the config and the run.
    pub dir: PathBuf,
    /// The experiment config.
    pub cfg: PathBuf,
    /// The run folder.
    pub run: PathBuf,
    /// What `palisade train` printed on stdout.
    pub stdout: String,
}

/// The shared trained run (trained on first use, once per test process).
pub fn trained_run() -> &'static TrainedRun {
    static RUN: std::sync::OnceLock<TrainedRun> = std::sync::OnceLock::new();
    RUN.get_or_init(|| {
        // One folder per test process (a runner may start one per test), left for the next
        // run to remove once its process has gone.
        const PREFIX: &str = "e2e-trained-run-";
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        for e in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let gone = name
                .strip_prefix(PREFIX)
                .is_some_and(|pid| !Path::new("/proc").join(pid).exists());
            if gone {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let dir = tmp.join(format!("{PREFIX}{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the trained run's folder");
        let cfg = tiny_config(&dir, "");
        let run = dir.join("run");
        let stdout = palisade_ok(
            &dir,
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
        TrainedRun {
            dir,
            cfg,
            run,
            stdout,
        }
    })
}

/// Copies the folder `from` into the new folder `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// All tensors of a safetensors file, by name.
pub fn read_tensors(path: &Path) -> std::collections::BTreeMap<String, tch::Tensor> {
    tch::Tensor::read_safetensors(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .collect()
}

/// Largest absolute difference between two tensors of the same shape.
pub fn max_abs_diff(a: &tch::Tensor, b: &tch::Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a.to_kind(tch::Kind::Double) - b.to_kind(tch::Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}

/// Trains `cfg` with `extra` arguments into the run folder `d/name`.
pub fn train_into(d: &Path, cfg: &str, name: &str, extra: &[&str]) -> PathBuf {
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

/// Trains `cfg` (plus `extra` arguments) straight through into `d/a`, and into `d/b` stopped
/// after `stop` steps and then resumed; returns both run folders.
pub fn straight_and_resumed(d: &Path, cfg: &str, stop: u64, extra: &[&str]) -> (PathBuf, PathBuf) {
    let a = train_into(d, cfg, "a", extra);
    let stop = stop.to_string();
    let stopped: Vec<&str> = ["--stop-at-step", stop.as_str()]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    let b = train_into(d, cfg, "b", &stopped);
    let resumed: Vec<&str> = std::iter::once("--resume")
        .chain(extra.iter().copied())
        .collect();
    train_into(d, cfg, "b", &resumed);
    (a, b)
}

/// `(step, loss)` of every train line of a metrics.jsonl.
pub fn train_steps(jsonl: &Path) -> Vec<(u64, f64)> {
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

/// Asserts two safetensors files hold the same tensors (to 1e-6).
pub fn same_tensors(a: &Path, b: &Path, what: &str) {
    let (ta, tb) = (read_tensors(a), read_tensors(b));
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    for (name, t) in &ta {
        let diff = max_abs_diff(t, &tb[name]);
        assert!(diff <= 1e-6, "{what}: {name} differs by {diff:e}");
    }
}
