//! Shards in a bucket: the tiny SigLIP run trained from a local S3-compatible server (moto in
//! server mode, started here on 127.0.0.1) logs the same losses and evaluation as from local
//! files, resumes exactly, and a missing bucket, a missing key or an empty glob is named.

use crate::common::*;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A moto S3 server on a free local port, stopped on drop.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(python())
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto starts (scripts/requirements-oracle.txt)");
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "moto did not listen"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// The S3 settings a user would export for this endpoint.
    fn env(&self) -> [(&'static str, String); 5] {
        [
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn train(
    d: &Path,
    cfg: &Path,
    name: &str,
    sets: &[&str],
    extra: &[&str],
    env: &[(&str, String)],
) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_palisade"));
    c.arg("train")
        .arg(cfg)
        .args(["--run-dir", d.join(name).to_str().unwrap(), "--no-progress"])
        .current_dir(d)
        .env("RUST_LOG", "warn");
    for s in sets {
        c.args(["--set", s]);
    }
    c.args(extra);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn retrieval(run: &Path) -> serde_json::Value {
    let e: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report/eval.json")).unwrap())
            .unwrap();
    e["retrieval"].clone()
}

#[test]
fn the_demo_trains_from_a_bucket_as_from_local_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = tiny_config(d, "");
    let local = train(d, &cfg, "local", &[], &[], &[]);
    assert!(local.status.success(), "{}", text(&local));

    let moto = Moto::start();
    let env = moto.env();
    for split in ["train", "eval"] {
        let mut files: Vec<String> = std::fs::read_dir(d.join("data").join(split))
            .unwrap()
            .map(|e| e.unwrap().path().display().to_string())
            .filter(|p| p.ends_with(".parquet"))
            .collect();
        files.sort();
        let mut up = Command::new(python());
        up.arg(repo().join("tests/oracles/s3_upload.py"))
            .args([moto.endpoint.as_str(), "shards", split])
            .args(&files);
        for (k, v) in &env {
            up.env(k, v);
        }
        let out = up.output().unwrap();
        assert!(out.status.success(), "upload: {}", text(&out));
    }
    let sets = [
        "data.train=s3://shards/train/*.parquet",
        "data.eval=s3://shards/eval/*.parquet",
        "data.synth=null",
    ];
    let s3 = train(d, &cfg, "s3", &sets, &[], &env);
    assert!(s3.status.success(), "{}", text(&s3));
    let steps = |run: &str| train_steps(&d.join(run).join("metrics.jsonl"));
    assert_eq!(
        steps("local"),
        steps("s3"),
        "every loss as from local files"
    );
    assert_eq!(
        retrieval(&d.join("local")),
        retrieval(&d.join("s3")),
        "the same evaluation"
    );

    // Stopped part-way and resumed from the bucket: still the same run.
    let part = train(d, &cfg, "resumed", &sets, &["--stop-at-step", "3"], &env);
    assert!(part.status.success(), "{}", text(&part));
    let rest = train(d, &cfg, "resumed", &sets, &["--resume"], &env);
    assert!(rest.status.success(), "{}", text(&rest));
    assert_eq!(steps("local"), steps("resumed"), "resumed exactly");

    for (set, needle) in [
        (
            "data.train=s3://no-such-bucket/train/*.parquet",
            "no-such-bucket",
        ),
        (
            "data.train=s3://shards/train/missing.parquet",
            "missing.parquet",
        ),
        (
            "data.train=s3://shards/nothing/*.parquet",
            "matches no objects",
        ),
    ] {
        let out = train(d, &cfg, "bad", &[set, "data.synth=null"], &[], &env);
        let t = text(&out);
        assert!(!out.status.success(), "{set}: {t}");
        assert!(t.contains(needle), "{set} should name {needle}:\n{t}");
        assert!(
            !d.join("bad/checkpoints").exists(),
            "{set}: nothing trained"
        );
    }
}
