//! The pieces of a bundle that need no release build: set-up refusing a PyTorch without a tch,
//! and the bundle launcher (scripts/bundle/palisade) finding, checking and refusing libtorch.
//! The whole bundle is tested in a clean root by scripts/bundle_test.sh (docs/bundle.md).

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The libtorch folder of this build (set by scripts/setup.sh's env.sh).
fn torch_lib() -> PathBuf {
    PathBuf::from(std::env::var("PALISADE_TORCH_LIB").expect("PALISADE_TORCH_LIB from env.sh"))
}

/// A bundle folder built for PyTorch `version`, whose binary is this test build's palisade.
fn fake_bundle(dir: &Path, version: &str) -> PathBuf {
    let b = dir.join("bundle");
    std::fs::create_dir_all(b.join("bin")).unwrap();
    std::fs::create_dir_all(b.join("lib")).unwrap();
    std::fs::copy(repo().join("scripts/bundle/palisade"), b.join("palisade")).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_palisade"), b.join("bin/palisade")).unwrap();
    std::fs::write(b.join("TORCH_VERSION"), format!("{version}\n")).unwrap();
    b
}

/// Runs the launcher with only PATH and the variables given.
fn launcher(bundle: &Path, vars: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut c = Command::new(bundle.join("palisade"));
    c.env_clear().env("PATH", "/usr/bin:/bin").args(args);
    for (k, v) in vars {
        c.env(k, v);
    }
    c.output().expect("the launcher runs")
}

#[test]
fn setup_refuses_a_pytorch_without_a_tch_naming_those_that_work() {
    let out = Command::new("bash")
        .arg(repo().join("scripts/setup.sh"))
        .args(["--torch", "2.12"])
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    for needle in [
        "2.12.0 has no matching tch",
        "2.13 (tch 0.26)",
        "2.11 (tch 0.24)",
    ] {
        assert!(t.contains(needle), "{needle:?} in:\n{t}");
    }
}

#[test]
fn the_launcher_runs_on_the_matching_libtorch_and_refuses_another_release() {
    let lib = torch_lib();
    let version = palisade_sharding::libtorch::version_in(&lib).expect("torch/version.py");
    let dir = tempfile::tempdir().unwrap();

    // The same release: found through PALISADE_TORCH_LIB, or through the python on PATH.
    let b = fake_bundle(dir.path(), &version);
    let lib_s = lib.to_str().unwrap();
    for vars in [
        vec![("PALISADE_TORCH_LIB", lib_s)],
        vec![("PALISADE_PYTHON", python().to_str().unwrap())],
    ] {
        let out = launcher(&b, &vars, &["doctor", "--json"]);
        assert!(out.status.success(), "{vars:?}: {}", text(&out));
        let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let got = PathBuf::from(d["libtorch_dir"].as_str().unwrap());
        assert_eq!(
            got.canonicalize().unwrap(),
            lib.canonicalize().unwrap(),
            "{d}"
        );
    }

    // Another release: refused before the binary starts, with both versions.
    std::fs::remove_dir_all(&b).unwrap();
    let b = fake_bundle(dir.path(), "2.99.0");
    let out = launcher(&b, &[("PALISADE_TORCH_LIB", lib_s)], &["doctor"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains("built for PyTorch 2.99.0") && t.contains(&format!("is PyTorch {version}")),
        "{t}"
    );

    // No PyTorch at all, and a folder that is not libtorch: each named.
    let out = launcher(
        &b,
        &[("PALISADE_PYTHON", "/nonexistent/python3")],
        &["doctor"],
    );
    assert!(text(&out).contains("no PyTorch found"), "{}", text(&out));
    let empty = dir.path().join("empty/lib");
    std::fs::create_dir_all(&empty).unwrap();
    let out = launcher(
        &b,
        &[("PALISADE_TORCH_LIB", empty.to_str().unwrap())],
        &["doctor"],
    );
    assert!(
        text(&out).contains("holds no libtorch_cpu.so"),
        "{}",
        text(&out)
    );
}
