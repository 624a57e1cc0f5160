//! `palisade launch`: line prefixes, failure propagation and signal forwarding end to end.

use crate::common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn launch(cwd: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("launch")
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .output()
        .expect("palisade launch runs")
}

#[test]
fn prefixes_each_rank_and_propagates_failure() {
    let dir = tempfile::tempdir().unwrap();
    let out = launch(dir.path(), &["--nproc-per-node", "3", "--", "--version"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for r in 0..3 {
        assert!(
            stdout.contains(&format!("[rank {r}] palisade ")),
            "{stdout}"
        );
    }
    let out = launch(
        dir.path(),
        &["--nproc-per-node", "2", "--", "train", "missing.yaml"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("] error: missing.yaml"), "{stderr}");
    assert!(stderr.contains("[launch] rank "), "{stderr}");
    let out = launch(dir.path(), &["--nnodes", "2", "--", "--version"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("--master"), "{}", text(&out));
}

#[test]
fn forwards_sigterm_to_the_ranks() {
    let dir = tempfile::tempdir().unwrap();
    super::training::synth_small_row_groups(dir.path());
    let cfg = tiny_config(dir.path(), "");
    let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["launch", "--nproc-per-node", "2", "--grace-s", "30", "--"])
        .args(["train", cfg.to_str().unwrap(), "--no-progress"])
        .args(["--set", "train.steps=1000000", "--set", "train.log_every=1"])
        .current_dir(dir.path())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("palisade launch starts");
    // Wait until both ranks are training, then stop the launcher as a scheduler would.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        if seen
            .iter()
            .any(|l| l.contains("[rank 0]") && l.contains("data loader ready"))
            && seen
                .iter()
                .any(|l| l.contains("[rank 1]") && l.contains("data loader ready"))
        {
            break;
        }
    }
    // Ranks sharing the node split its threads, and say so.
    for r in 0..2 {
        assert!(
            seen.iter().any(|l| l.contains(&format!("[rank {r}]"))
                && l.contains("2 ranks share this node")
                && l.contains("1 compute + 1 data threads per rank")),
            "{seen:#?}"
        );
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let rest: Vec<String> = lines.map_while(|l| l.ok()).collect();
    let status = child.wait().unwrap();
    let all = format!("{}\n{}", seen.join("\n"), rest.join("\n"));
    // The ranks stop as preempted: the step finished, a checkpoint written, exit code 75.
    assert_eq!(status.code(), Some(75), "{all}");
    assert!(all.contains("[launch] forwarding signal 15"), "{all}");
    assert!(all.contains("preempted (signal 15)"), "{all}");
}
