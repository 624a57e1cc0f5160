//! Fault injection: what a cluster does to a run — two jobs in one folder, a killed launcher,
//! preemption signals, kill -9, crash debris, a full disk, odd resumes, config mistakes — each
//! with the outcome palisade promises (docs/reliability.md).

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Steps of the long runs that get interrupted.
const LONG: u64 = 600;

/// `palisade ARGS` started in the background, its output in `dir/NAME.log`.
fn spawn(dir: &Path, name: &str, args: &[&str]) -> Child {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("palisade starts")
}

/// The arguments training `cfg` for `steps` into `run`, logging every step.
fn long_args<'a>(cfg: &'a str, run: &'a str, steps: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        cfg,
        "--run-dir",
        run,
        "--no-progress",
        "--set",
        steps,
        "--set",
        "train.checkpoint_every=100",
        "--set",
        "train.log_every=1",
    ]
}

/// Waits until `run`'s metrics.jsonl has `lines` lines.
fn wait_for_steps(run: &Path, lines: usize, child: &mut Child) {
    let start = Instant::now();
    loop {
        let n = std::fs::read_to_string(run.join("metrics.jsonl"))
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if n >= lines {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the run ended ({status}) before step {lines}");
        }
        assert!(start.elapsed() < Duration::from_secs(120), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a process this test started.
    unsafe { libc::kill(pid as libc::pid_t, sig) };
}

/// Whether `pid` has exited (gone, or a zombie nobody reaped yet).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z')),
    }
}

/// Processes whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')?
                        .1
                        .split_whitespace()
                        .nth(1)?
                        .parse()
                        .ok()
                })
                == Some(pid)
        })
        .collect()
}

/// The data and config of the long runs, and one uninterrupted run of LONG steps to compare with.
struct Reference {
    dir: PathBuf,
    cfg: String,
    run: PathBuf,
}

fn reference() -> &'static Reference {
    static REF: OnceLock<Reference> = OnceLock::new();
    REF.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("e2e-reliability-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = tiny_config(&dir, "").to_str().unwrap().to_string();
        let run = dir.join("straight");
        let steps = format!("train.steps={LONG}");
        palisade_ok(&dir, &long_args(&cfg, run.to_str().unwrap(), &steps));
        Reference { dir, cfg, run }
    })
}

/// Interrupts a LONG-step run with `sig` after some steps, resumes it, and checks it ends
/// exactly where the uninterrupted run does; returns the interrupted process's exit code.
fn interrupted_then_resumed(name: &str, sig: i32) -> Option<i32> {
    let r = reference();
    let run = r.dir.join(name);
    let run_s = run.to_str().unwrap();
    let steps = format!("train.steps={LONG}");
    let mut child = spawn(&r.dir, name, &long_args(&r.cfg, run_s, &steps));
    wait_for_steps(&run, 150, &mut child);
    signal(child.id(), sig);
    let status = child.wait().unwrap();
    let log = std::fs::read_to_string(r.dir.join(format!("{name}.log"))).unwrap();
    let mut resumed = long_args(&r.cfg, run_s, &steps);
    resumed.push("--resume");
    palisade_ok(&r.dir, &resumed);
    let last = format!("checkpoints/step-{LONG:08}");
    for file in ["model.safetensors", "optimizer.safetensors"] {
        same_tensors(
            &r.run.join(&last).join(file),
            &run.join(&last).join(file),
            &format!("{name}: {file}"),
        );
    }
    assert_eq!(
        train_steps(&r.run.join("metrics.jsonl")),
        train_steps(&run.join("metrics.jsonl")),
        "{name}: every logged loss, once each\n{log}"
    );
    status.code()
}

#[test]
fn a_preemption_signal_checkpoints_exits_75_and_the_resumed_run_is_identical() {
    let code = interrupted_then_resumed("preempted", libc::SIGUSR1);
    assert_eq!(code, Some(75), "the preempted run's exit code");
    let log = std::fs::read_to_string(reference().dir.join("preempted.log")).unwrap();
    assert!(
        log.contains("preempted (signal 10): checkpoint of step"),
        "{log}"
    );
}

#[test]
fn kill_9_mid_run_resumes_identically() {
    assert_eq!(interrupted_then_resumed("killed", libc::SIGKILL), None);
}

#[test]
fn two_writers_on_one_folder_are_refused_and_a_dead_writers_lock_is_taken_over() {
    let r = reference();
    let run = r.dir.join("shared");
    let run_s = run.to_str().unwrap();
    let steps = format!("train.steps={}", 100 * LONG);
    let mut first = spawn(&r.dir, "first", &long_args(&r.cfg, run_s, &steps));
    wait_for_steps(&run, 5, &mut first);
    let second = palisade(&r.dir, &long_args(&r.cfg, run_s, &steps));
    let t = text(&second);
    assert!(!second.status.success(), "{t}");
    assert!(
        t.contains(&format!("in use by pid {}", first.id())),
        "names the holder: {t}"
    );
    assert!(t.contains(&palisade_files::hostname()), "{t}");
    signal(first.id(), libc::SIGKILL);
    first.wait().unwrap();
    let mut again = long_args(&r.cfg, run_s, &steps);
    again.extend(["--resume", "--stop-at-step", "10"]);
    let out = palisade(&r.dir, &again);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("took over the lock of pid {}", first.id())),
        "{}",
        text(&out)
    );
}

#[test]
fn killing_the_launcher_stops_its_ranks_and_a_hangup_preempts_them() {
    // Two ranks need row groups to share out.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    crate::distributed::training::synth_small_row_groups(d);
    let cfg = tiny_config(d, "");
    let cfg = cfg.to_str().unwrap();
    let steps = format!("train.steps={}", 100 * LONG);
    for (name, sig) in [("launch-kill", libc::SIGKILL), ("launch-hup", libc::SIGHUP)] {
        let run = d.join(name);
        let run_s = run.to_str().unwrap();
        let mut args = vec!["launch", "--nproc-per-node", "2", "--"];
        args.extend(long_args(cfg, run_s, &steps));
        let mut launcher = spawn(d, name, &args);
        wait_for_steps(&run, 5, &mut launcher);
        let ranks = children_of(launcher.id());
        assert_eq!(ranks.len(), 2, "{name}: two ranks");
        signal(launcher.id(), sig);
        let status = launcher.wait().unwrap();
        let start = Instant::now();
        while !ranks.iter().all(|&p| gone(p)) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{name}: ranks {ranks:?} outlived their launcher"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // They stopped as preempted: the step's checkpoint is there to resume from.
        let ckpts = std::fs::read_dir(run.join("checkpoints")).unwrap().count();
        assert_eq!(ckpts, 1, "{name}: one checkpoint, written on the way out");
        if sig == libc::SIGHUP {
            assert_eq!(status.code(), Some(75), "{name}: the ranks' preempted code");
        }
    }
}

/// A tmpfs of `bytes` mounted at `at` for the guard's life (None where mounting is not allowed).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, bytes: usize) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(at)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn crash_debris_is_removed_and_a_full_disk_is_refused_up_front() {
    let t = trained_run();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    copy_dir(&t.run, &run);
    // What a writer killed mid-checkpoint leaves: a hidden folder named for its (dead) PID.
    let debris = run.join("checkpoints/.step-00000008.tmp-999999999");
    std::fs::create_dir_all(&debris).unwrap();
    std::fs::write(debris.join("model.safetensors"), vec![0u8; 4096]).unwrap();
    let out = palisade(
        &t.dir,
        &[
            "train",
            t.cfg.to_str().unwrap(),
            "--run-dir",
            run.to_str().unwrap(),
            "--resume",
            "--set",
            "train.steps=8",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(!debris.exists());
    assert!(
        text(&out).contains(".step-00000008.tmp-999999999 (4096 bytes)"),
        "{}",
        text(&out)
    );

    let disk = dir.path().join("small-disk");
    let Some(_tmpfs) = Tmpfs::mount(&disk, 256 << 10) else {
        eprintln!("skipped the full-disk case: this machine does not allow mounting a tmpfs");
        return;
    };
    let full = disk.join("run");
    let out = palisade(
        &t.dir,
        &[
            "train",
            t.cfg.to_str().unwrap(),
            "--run-dir",
            full.to_str().unwrap(),
        ],
    );
    let msg = text(&out);
    assert!(!out.status.success(), "{msg}");
    assert!(
        msg.contains("checkpoint step 2 needs") && msg.contains("are free there"),
        "{msg}"
    );
    let left: Vec<_> = std::fs::read_dir(full.join("checkpoints"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "nothing half-written: {left:?}");
}

#[test]
fn resume_says_what_it_does() {
    let t = trained_run();
    let cfg = t.cfg.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let copy = |name: &str| {
        let run = dir.path().join(name);
        copy_dir(&t.run, &run);
        run
    };
    let resume = |run: &Path, extra: &[&str]| {
        let mut args = vec!["train", cfg, "--run-dir", run.to_str().unwrap(), "--resume"];
        args.extend(extra);
        palisade(&t.dir, &args)
    };

    // A finished run says so and changes nothing.
    let done = copy("done");
    let before = std::fs::read(done.join("metrics.jsonl")).unwrap();
    let config = std::fs::read(done.join("config.yaml")).unwrap();
    let out = resume(&done, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("already finished at step 6"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read(done.join("metrics.jsonl")).unwrap(), before);
    assert_eq!(std::fs::read(done.join("config.yaml")).unwrap(), config);

    // Fewer steps than the checkpoint has: refused with both numbers.
    let out = resume(&done, &["--set", "train.steps=3"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("train.steps: 3 is below step 6"),
        "{}",
        text(&out)
    );

    // A changed learning rate changes the trajectory: refused, unless allowed.
    let out = resume(&done, &["--set", "train.steps=8", "--set", "train.lr=0.5"]);
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(
        msg.contains("train.lr: ") && msg.contains("--allow-config-change"),
        "{msg}"
    );
    let out = resume(
        &done,
        &[
            "--set",
            "train.steps=8",
            "--set",
            "train.lr=0.5",
            "--allow-config-change",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(done.join("checkpoints/step-00000008/state.json").exists());

    // Broken newer checkpoints are passed over by name, and the older one is used.
    let broken = copy("broken");
    std::fs::remove_file(broken.join("checkpoints/step-00000006/state.json")).unwrap();
    let out = resume(&broken, &["--set", "train.steps=8"]);
    let msg = text(&out);
    assert!(out.status.success(), "{msg}");
    assert!(msg.contains("step-00000006: it has no state.json"), "{msg}");
    let truncated = copy("truncated");
    let w = truncated.join("checkpoints/step-00000006/model.safetensors");
    let bytes = std::fs::read(&w).unwrap();
    std::fs::write(&w, &bytes[..bytes.len() / 2]).unwrap();
    let out = resume(&truncated, &["--set", "train.steps=8"]);
    let msg = text(&out);
    assert!(out.status.success(), "{msg}");
    assert!(
        msg.contains("skipping") && msg.contains("model.safetensors"),
        "{msg}"
    );

    // --resume into an empty folder says it starts fresh.
    let out = resume(&dir.path().join("empty"), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("starting fresh"), "{}", text(&out));
}

#[test]
fn config_errors_name_their_true_source() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path(), "");
    let cfg_s = cfg.to_str().unwrap();
    let fails = |args: &[&str], needles: &[&str], not: &str| {
        let out = palisade(dir.path(), args);
        let t = text(&out);
        assert!(!out.status.success(), "{t}");
        for n in needles {
            assert!(t.contains(n), "{args:?}: should mention {n:?}:\n{t}");
        }
        assert!(
            !t.contains(not),
            "{args:?}: should not mention {not:?}:\n{t}"
        );
    };
    let set = |s: &'static str| ["train", cfg_s, "--set", s];
    fails(
        &set("train.lr=-1e-3"),
        &["--set train.lr=-1e-3: key train.lr"],
        "tiny.yaml",
    );
    fails(
        &set("train.batch_size=0"),
        &["--set train.batch_size=0"],
        "tiny.yaml",
    );
    fails(
        &set("trian.steps=3"),
        &["--set trian.steps=3: key trian: unknown field"],
        "tiny.yaml",
    );
    fails(
        &set("train.stpes=3"),
        &["key train.stpes: unknown"],
        "stpes.stpes",
    );
    // A batch no rank's share of the 192 rows can fill.
    fails(
        &set("train.batch_size=256"),
        &["train.batch_size", "exceed the 192 rows"],
        "panicked",
    );

    let missing = dir.path().join("child.yaml");
    std::fs::write(&missing, "base: nowhere.yaml\n").unwrap();
    let out = palisade(dir.path(), &["train", missing.to_str().unwrap()]);
    let t = text(&out);
    assert!(
        t.contains("child.yaml: key base: \"nowhere.yaml\" does not exist"),
        "{t}"
    );
    assert_eq!(t.matches("does not exist").count(), 1, "said once: {t}");

    // The tiny config sets patch_size 8 beside its preset; a child naming another preset
    // would silently keep the base's patch size.
    let child = dir.path().join("preset.yaml");
    std::fs::write(
        &child,
        format!("base: {cfg_s}\nmodel: {{vision: {{preset: tiny}}}}\n"),
    )
    .unwrap();
    let out = palisade(dir.path(), &["train", child.to_str().unwrap()]);
    let t = text(&out);
    assert!(t.contains("tiny.yaml: key model.vision.patch_size"), "{t}");
    assert!(t.contains("preset.yaml sets later"), "{t}");
}
