//! `palisade sweep`: configs, the table and the job array written per combination, keys checked
//! before anything is written, and the runs trained here two at a time.

use crate::common::*;

#[test]
fn a_sweep_writes_every_run_and_trains_them_locally() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = tiny_config(d, "sweep: {grid: {seed: [0, 1]}}\n");
    let out = d.join("sweep");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "sweep",
            cfg.to_str().unwrap(),
            "--grid",
            "train.lr=1e-3,2e-3",
            "--out",
            out.to_str().unwrap(),
            "--set",
            "train.checkpoint_every=6",
        ];
        a.extend(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };

    // An unknown key is refused with its path before anything is written.
    let bad: Vec<String> = args(&["--grid", "train.lrr=1,2"]);
    let bad: Vec<&str> = bad.iter().map(String::as_str).collect();
    let res = palisade(d, &bad);
    assert!(!res.status.success());
    assert!(text(&res).contains("key train.lrr"), "{}", text(&res));
    assert!(!out.exists(), "nothing written");
    let empty = palisade(d, &["sweep", "x.yaml", "--grid", "train.lr=", "--out", "o"]);
    assert!(
        text(&empty).contains("at least one value"),
        "{}",
        text(&empty)
    );

    let ok: Vec<String> = args(&["--run", "local", "--parallel", "2"]);
    let ok: Vec<&str> = ok.iter().map(String::as_str).collect();
    let printed = palisade_ok(d, &ok);
    let names = [
        "seed=0_lr=1e-3",
        "seed=0_lr=2e-3",
        "seed=1_lr=1e-3",
        "seed=1_lr=2e-3",
    ];
    let tsv = std::fs::read_to_string(out.join("sweep.tsv")).unwrap();
    assert_eq!(tsv.lines().count(), 5, "{tsv}");
    assert!(
        tsv.contains("3\tseed=1_lr=2e-3\tseed=1 train.lr=2e-3"),
        "{tsv}"
    );
    let sbatch = std::fs::read_to_string(out.join("sweep.sbatch")).unwrap();
    assert!(sbatch.contains("#SBATCH --array=0-3"), "{sbatch}");
    assert!(
        sbatch.contains("--resume") && sbatch.contains("--requeue"),
        "{sbatch}"
    );
    let syntax = std::process::Command::new("bash")
        .args(["-n", out.join("sweep.sbatch").to_str().unwrap()])
        .status()
        .unwrap();
    assert!(syntax.success(), "the job array is valid bash");
    for name in names {
        assert!(printed.contains(name), "{printed}");
        let run = out.join(name);
        let config = std::fs::read_to_string(run.join("config.yaml")).unwrap();
        assert!(
            !config.contains("sweep:") && !config.contains("base:"),
            "{config}"
        );
        assert!(run.join("report/eval.json").exists(), "{name} trained");
        assert!(run.join("checkpoints/step-00000006/state.json").exists());
    }
    // The seeds and rates took effect: four different trajectories.
    let mut finals: Vec<f64> = names
        .iter()
        .map(|n| {
            train_steps(&out.join(n).join("metrics.jsonl"))
                .last()
                .unwrap()
                .1
        })
        .collect();
    finals.sort_by(f64::total_cmp);
    finals.dedup();
    assert_eq!(finals.len(), 4, "{finals:?}");

    // The comparison shows the varied keys as columns and marks the best run per metric.
    let mut report = vec!["report".to_string()];
    report.extend(names.iter().map(|n| out.join(n).display().to_string()));
    report.extend(["--out".into(), out.join("report").display().to_string()]);
    let report: Vec<&str> = report.iter().map(String::as_str).collect();
    palisade_ok(d, &report);
    let md = std::fs::read_to_string(out.join("report/comparison.md")).unwrap();
    let head = md.lines().find(|l| l.starts_with("| run |")).unwrap();
    assert!(head.contains("| seed | train.lr |"), "{head}");
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| seed=")).collect();
    assert_eq!(rows.len(), 4, "{md}");
    let stars = md.matches(" ★").count();
    let columns = head.matches(" | ").count() + 1;
    assert!(
        stars >= 2 && stars <= columns,
        "one best per metric column:\n{md}"
    );
}

/// The job array submitted to the single-node Slurm that scripts/test.sh starts
/// (scripts/local_slurm.sh): both tasks train their run, each logging into the sweep's folder.
#[test]
fn the_job_array_runs_under_slurm() {
    let up = std::process::Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output();
    let states = up.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    assert!(
        states
            .as_deref()
            .is_ok_and(|s| s.contains("idle") || s.contains("mix")),
        "no Slurm node is up ({states:?}): scripts/test.sh starts one with scripts/local_slurm.sh"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = tiny_config(d, "");
    let out = d.join("sweep");
    palisade_ok(
        d,
        &[
            "sweep",
            cfg.to_str().unwrap(),
            "--grid",
            "seed=0,1",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    // The node has this machine's cores: one per task instead of the template's 12.
    let res = std::process::Command::new("sbatch")
        .args(["--wait", "--cpus-per-task=1", "--time=10"])
        .arg(out.join("sweep.sbatch"))
        .current_dir(d)
        .env("PALISADE_DEVICE", "cpu")
        .output()
        .unwrap();
    let logs: Vec<String> = std::fs::read_dir(out.join("slurm-logs"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(
        res.status.success(),
        "{}\n{logs:#?}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert_eq!(logs.len(), 2, "one log per array task");
    for name in ["seed=0", "seed=1"] {
        let run = out.join(name);
        assert!(run.join("report/eval.json").exists(), "{name}: {logs:#?}");
        assert!(run.join("checkpoints/step-00000006/state.json").exists());
    }
}
