//! Tensor parallelism (`parallel.tp`): ranks that split every block's heads and MLP units end
//! where one process ends, alone (tp 2, tp 4) and inside data parallelism (dp 2 × tp 2), and a
//! tensor-parallel checkpoint resumes on one process; PaLI (ViT and T5 split) likewise.

use super::fsdp::{assert_same_run, caption_config, gap_and_movement, kept_shares};
use super::ranks;
use super::training::{assert_ends_as, mpirun_train, synth_small_row_groups, worst_gap};
use crate::common::*;
use palisade_sharding::mpi_harness::mpirun;
use std::path::Path;

#[test]
fn tensor_parallel_ranks_match_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    synth_small_row_groups(d);
    let cfg = tiny_config(d, "");
    let cfg = cfg.to_str().unwrap();
    // Four heads in both towers (mu has two), so that four ranks can split them.
    let common = [
        "--no-progress",
        "--set",
        "data.shuffle=false",
        "--set",
        "model.vision.num_attention_heads=4",
        "--set",
        "model.text.num_attention_heads=4",
    ];
    let train = |w: usize, run: &Path, extra: &[&str]| {
        let mut cmd = if w == 1 {
            std::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
        } else {
            let mut c = mpirun(w);
            c.arg(env!("CARGO_BIN_EXE_palisade"));
            c
        };
        cmd.current_dir(d)
            .env("RUST_LOG", "warn")
            .args(["train", cfg, "--run-dir", run.to_str().unwrap()])
            .args(common)
            .args(extra);
        ranks::run(cmd, &format!("palisade train on {w} ranks {extra:?}"));
    };
    let one = d.join("run-1");
    train(1, &one, &[]);
    let runs = [(2usize, 2usize), (4, 2), (4, 4)];
    let run_dir = |w: usize, tp: usize| d.join(format!("run-{w}-tp{tp}"));
    for (w, tp) in runs {
        train(w, &run_dir(w, tp), &["--set", &format!("parallel.tp={tp}")]);
    }
    // Sequence parallelism: both towers' blocks on 1 / tp of the tokens (4 image patches, 12
    // text tokens), at tp 2, at dp 2 x tp 2 with each block recomputed in backward, and tp 4.
    let sp = ["--set", "parallel.sequence_parallel=true"];
    let sp_runs: [(usize, usize, &[&str]); 3] = [
        (2, 2, &[]),
        (4, 2, &["--set", "train.remat=blocks"]),
        (4, 4, &[]),
    ];
    let sp_dir = |w: usize, tp: usize| d.join(format!("run-{w}-tp{tp}-sp"));
    for (w, tp, more) in sp_runs {
        let tp_set = format!("parallel.tp={tp}");
        let args = [&sp[..], &["--set", &tp_set], more].concat();
        train(w, &sp_dir(w, tp), &args);
    }
    // Two tensor-parallel ranks stopped at step 3 (whole weights and optimizer state in the
    // checkpoint), resumed on one process.
    let resumed = d.join("run-tp2-resumed");
    train(
        2,
        &resumed,
        &["--set", "parallel.tp=2", "--stop-at-step", "3"],
    );
    train(1, &resumed, &["--resume"]);
    // dp 2 x tp 2 with the optimizer state sharded over the data-parallel ranks (each
    // tensor-parallel position its own ZeRO group) and a moving average of the slices; stopped
    // at step 3 (one optimizer shard per data-parallel rank, whole tensors in each) and resumed
    // on one process without either.
    let ema = ["--set", "train.ema_decay=0.9"];
    let one_ema = d.join("run-1-ema");
    train(1, &one_ema, &ema);
    let zero = [
        &ema[..],
        &[
            "--set",
            "parallel.tp=2",
            "--set",
            "parallel.shard=optimizer",
        ],
    ]
    .concat();
    let zero_run = d.join("run-4-tp2-zero-ema");
    train(4, &zero_run, &zero);
    let zero_resumed = d.join("run-4-tp2-zero-ema-resumed");
    train(
        4,
        &zero_resumed,
        &[&zero[..], &["--stop-at-step", "3"]].concat(),
    );
    let step3 = zero_resumed.join("checkpoints/step-00000003");
    let index = std::fs::read_to_string(step3.join("optimizer.safetensors.index.json")).unwrap();
    for shard in ["optimizer-00001-of-00002", "optimizer-00002-of-00002"] {
        assert!(index.contains(shard), "{index}");
    }
    train(1, &zero_resumed, &[&ema[..], &["--resume"]].concat());

    for (w, tp) in runs {
        let run = run_dir(w, tp);
        let ckpt = assert_ends_as(&one, &run, &format!("{w} ranks, tp {tp}"));
        // The data cursors are the data-parallel ranks'; tensor-parallel ranks share theirs.
        let state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(ckpt.join("state.json")).unwrap())
                .unwrap();
        assert_eq!(state["world_size"], w / tp, "{state}");
        assert_eq!(state["data_cursors"].as_array().unwrap().len(), w / tp);
        assert!(run.join("report/eval.json").exists());
    }
    assert_ends_as(&one, &resumed, "tp 2 resumed on one process");
    for (w, tp, more) in sp_runs {
        let label = format!("{w} ranks, tp {tp}, sequence-parallel {more:?}");
        assert_ends_as(&one, &sp_dir(w, tp), &label);
    }
    // A checkpoint tensor that is not the whole of its slices is refused naming it and both
    // shapes, before any step.
    let bad = d.join("run-bad-state");
    copy_dir(&resumed, &bad);
    for later in ["step-00000004", "step-00000006"] {
        std::fs::remove_dir_all(bad.join("checkpoints").join(later)).unwrap();
    }
    let opt = bad.join("checkpoints/step-00000003/optimizer.safetensors");
    let key = "exp_avg.vision_model.encoder.layers.0.self_attn.q_proj.weight";
    let state: Vec<(String, tch::Tensor)> = read_tensors(&opt)
        .into_iter()
        .map(|(k, t)| {
            let t = if k == key {
                t.narrow(0, 0, t.size()[0] - 2)
            } else {
                t
            };
            (k, t)
        })
        .collect();
    tch::Tensor::write_safetensors(&state, &opt).unwrap();
    let mut cmd = mpirun(2);
    cmd.arg(env!("CARGO_BIN_EXE_palisade"))
        .current_dir(d)
        .args(["train", cfg, "--run-dir", bad.to_str().unwrap(), "--resume"])
        .args(common)
        .args(["--set", "parallel.tp=2"]);
    let out = cmd.output().expect("mpirun runs");
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    for w in [
        key,
        "shape [30, 32]",
        "the model's is [32, 32]",
        "parallel.tp: 2",
    ] {
        assert!(said.contains(w), "wants {w:?} in {said}");
    }
    assert!(
        !bad.join("checkpoints/step-00000004").exists(),
        "no step taken"
    );
    for (run, label) in [
        (&zero_run, "dp 2 x tp 2, sharded optimizer, EMA"),
        (&zero_resumed, "the same resumed on one process"),
    ] {
        assert_ends_as(&one_ema, run, label);
        // The moving average is saved whole and ends where one process's does.
        let shadow = |r: &Path| read_tensors(&r.join("checkpoints/step-00000006/ema.safetensors"));
        let (want, got) = (shadow(&one_ema), shadow(run));
        assert_eq!(want.len(), got.len(), "{label}");
        let (gap, name) = worst_gap(&want, &got);
        assert!(gap < 1e-4, "{label}: EMA of {name} differs by {gap:e}");
        // And it is evaluated on the slices as one process evaluates it whole: the same
        // retrieval recalls and zero-shot accuracies.
        let ema_report = |r: &Path| -> serde_json::Value {
            let p = r.join("report/ema/eval.json");
            serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
        };
        let (want, got) = (ema_report(&one_ema), ema_report(run));
        for part in ["retrieval", "zero_shot"] {
            assert!(
                !want[part].as_array().unwrap().is_empty(),
                "{label}: {want}"
            );
            assert_eq!(want[part], got[part], "{label}: EMA {part}");
        }
    }
}

#[test]
fn pali_tensor_parallel_ranks_match_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Stage 2: the ViT trained too, so its split blocks and the T5's both take steps.
    let cfg = caption_config(d, "freeze_vision: false");
    let cfg = cfg.to_str().unwrap();
    // The tokenizer's 1069 ids (1024 of them locations) do not split; 1072 rows split 2 and 4
    // ways, as a real vocabulary is padded to a multiple of the group.
    let vocab = ["--set", "model.language.vocab_size=1072"];
    let one = train_into(d, cfg, "one", &vocab);
    // tp 4 needs four ViT heads (mu has two; its T5 has four).
    let heads = [&vocab[..], &["--set", "model.vision.num_attention_heads=4"]].concat();
    let one_4 = train_into(d, cfg, "one-4-heads", &heads);
    // Then dp 2 x tp 2 fully sharded over the data-parallel ranks (each tensor-parallel
    // position's block slices live on their owner and are gathered per remat segment), and
    // tp 2 with the ViT's blocks sequence-parallel.
    let full = super::fsdp::FULL_WITH_REMAT;
    for (w, tp, more) in [
        (2usize, 2usize, &[][..]),
        (4, 2, &[]),
        (4, 4, &[]),
        (4, 2, full),
        (2, 2, &["--set", "parallel.sequence_parallel=true"]),
    ] {
        let (one, extra): (&Path, &[&str]) = if tp == 4 {
            (&one_4, &heads)
        } else {
            (&one, &vocab)
        };
        let run = d.join(format!(
            "tp{tp}-on-{w}{}",
            if more.is_empty() {
                String::new()
            } else {
                format!("-{}", more[1].replace('=', "-"))
            }
        ));
        let mut cmd = mpirun_train(w, d, cfg, &run);
        cmd.args(["--set", &format!("parallel.tp={tp}")])
            .args(extra)
            .args(more);
        cmd.env("RUST_LOG", "info");
        let out = ranks::run(
            cmd,
            &format!("PaLI, parallel.tp: {tp} on {w} ranks {more:?}"),
        );
        let label = format!("{w} ranks, tp {tp} {more:?}");
        if more == full {
            // Each of a tensor-parallel position's 2 data-parallel ranks keeps part of its
            // block slices, the two together all of them.
            let kept = kept_shares(&out);
            assert_eq!(kept.len(), 4, "{out}");
            let all = kept[0].1;
            assert_eq!(kept.iter().map(|k| k.0).sum::<u64>(), 2 * all, "{kept:?}");
            assert!(kept.iter().all(|&(m, n)| n == all && m < all), "{kept:?}");
        }
        let ((gap, name), moved) = gap_and_movement(one, &run);
        assert!(moved > 1e-3, "training moved the weights by {moved}");
        assert!(gap < 1e-4, "{label}: {name} differs by {gap:e}");
        // Evaluation decodes on the slices (the chosen position's logits gathered): the same
        // captions and scores.
        assert_same_run(one, &run, &label);
    }
}

#[test]
fn tensor_parallel_sizes_that_cannot_split_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = tiny_config(d, "");
    let cfg = cfg.to_str().unwrap();
    let refused = |w: usize, extra: &[&str], want: &[&str]| {
        let mut cmd = mpirun(w);
        cmd.arg(env!("CARGO_BIN_EXE_palisade"))
            .current_dir(d)
            .args(["train", cfg, "--no-progress"])
            .args(extra);
        let out = cmd.output().expect("mpirun runs");
        let text = text(&out);
        assert!(!out.status.success(), "{extra:?}: {text}");
        for w in want {
            assert!(text.contains(w), "{extra:?}: wants {w:?} in {text}");
        }
        assert!(!d.join("runs/tiny/checkpoints").exists(), "nothing trained");
    };
    // 4 heads split 4 ways, but over 2 ranks; mu's 2 heads do not split 4 ways.
    let heads = [
        "--set",
        "model.vision.num_attention_heads=4",
        "--set",
        "model.text.num_attention_heads=4",
    ];
    let tp4: Vec<&str> = heads
        .iter()
        .copied()
        .chain(["--set", "parallel.tp=4"])
        .collect();
    refused(2, &tp4, &["parallel.tp: 4", "2 ranks"]);
    refused(
        4,
        &["--set", "parallel.tp=4"],
        &["parallel.tp: 4", "num_attention_heads (2)"],
    );
    // What tensor parallelism does not cover yet is refused by name, on one process too.
    let alone = |cfg: &Path, extra: &[&str], want: &[&str]| {
        let mut args = vec!["train", cfg.to_str().unwrap(), "--no-progress"];
        args.extend(extra);
        let out = palisade(d, &args);
        let text = text(&out);
        assert!(!out.status.success(), "{extra:?}: {text}");
        for w in want {
            assert!(text.contains(w), "{extra:?}: wants {w:?} in {text}");
        }
    };
    let tp2: Vec<&str> = heads
        .iter()
        .copied()
        .chain(["--set", "parallel.tp=2"])
        .collect();
    let adafactor: Vec<&str> = tp2
        .iter()
        .copied()
        .chain(["--set", "train.optimizer=adafactor"])
        .collect();
    alone(
        Path::new(cfg),
        &adafactor,
        &["train.optimizer: adafactor", "parallel.tp: 2", "use adamw"],
    );
    // The T5 mu preset's 4 heads do not split 3 ways (nor its 2 ViT heads).
    let pali = crate::pali::pali_config(d);
    alone(
        &pali,
        &["--set", "parallel.tp=3"],
        &["parallel.tp: 3", "num_attention_heads (2)"],
    );
    // The vocabulary (the tokenizer's odd count of ids) is split too: named, with a size that
    // would do.
    let mut cmd = mpirun(2);
    cmd.arg(env!("CARGO_BIN_EXE_palisade"))
        .current_dir(d)
        .args(["train", pali.to_str().unwrap(), "--no-progress"])
        .args([
            "--set",
            "parallel.tp=2",
            "--set",
            "model.vision.num_attention_heads=4",
        ]);
    let out = cmd.output().expect("mpirun runs");
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    for w in [
        "parallel.tp: 2",
        "the vocabulary (",
        "of tensor language_model.",
    ] {
        assert!(said.contains(w), "wants {w:?} in {said}");
    }
    let pad: usize = said
        .split("e.g. model.language.vocab_size: ")
        .nth(1)
        .and_then(|r| r.split(')').next()?.parse().ok())
        .unwrap_or_else(|| panic!("a size that would do, in {said}"));
    assert_eq!(pad % 2, 0, "{said}");
    alone(
        &pali,
        &[
            "--set",
            "model.vision.num_attention_heads=6",
            "--set",
            "model.vision.intermediate_size=96",
            "--set",
            "parallel.tp=3",
        ],
        &["parallel.tp: 3", "model.language num_heads (4)"],
    );
}

#[test]
fn pali_demo_as_dp2_by_tp2_under_launch_reaches_the_data_parallel_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The demo's config (its shuffled three-task mixture, its three evaluations) at mu size,
    // everything trained; 4 ViT heads and a vocabulary padded to 1072 rows so that two ranks
    // split both. Which examples a step sees depends on the data-parallel size (each rank
    // reads its own share and draws its own mixture counts), so the reference is dp 2 without
    // tensor parallelism: splitting each replica over two more ranks may change rounding only.
    let cfg = crate::pali::pali_config(d);
    let cfg = cfg.to_str().unwrap();
    let extra = [
        "--set",
        "data.synth.rows_per_group=8",
        "--set",
        "train.freeze_vision=false",
        "--set",
        "model.language.vocab_size=1072",
        "--set",
        "model.vision.num_attention_heads=4",
    ];
    // `palisade launch` (the TCP backend), each rank taking its share of the node's threads.
    let launch = |n: &str, run: &Path, tp: &str| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_palisade"));
        cmd.current_dir(d)
            .env("RUST_LOG", "warn")
            .args(["launch", "--nproc-per-node", n, "--"])
            .args([
                "train",
                cfg,
                "--run-dir",
                run.to_str().unwrap(),
                "--no-progress",
            ])
            .args(["--set", &format!("parallel.tp={tp}")])
            .args(extra);
        ranks::run(cmd, &format!("the PaLI demo on {n} ranks, tp {tp}"));
    };
    let (one, run) = (d.join("dp2"), d.join("dp2-tp2"));
    launch("2", &one, "1");
    launch("4", &run, "2");
    let ((gap, name), moved) = gap_and_movement(&one, &run);
    assert!(moved > 1e-3, "training moved the weights by {moved}");
    assert!(gap < 1e-4, "{name} differs by {gap:e}");
    // Every task's scores and the decoded examples, not only the first task's.
    let read = |r: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(r.join("report/eval.json")).unwrap()).unwrap()
    };
    let (a, b) = (read(&one), read(&run));
    assert_eq!(a["qualitative"], b["qualitative"], "decoded examples");
    let tasks = a["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 3, "caption, vqa and refcoco: {a}");
    for (ta, tb) in tasks.iter().zip(b["tasks"].as_array().unwrap()) {
        assert_eq!(ta["name"], tb["name"]);
        assert_eq!(ta["examples"], tb["examples"]);
        for (k, va) in ta["metrics"].as_object().unwrap() {
            let (va, vb) = (va.as_f64().unwrap(), tb["metrics"][k].as_f64().unwrap());
            let tol = if k == "loss" { 1e-5 } else { 0.0 };
            assert!((va - vb).abs() <= tol, "{} {k}: {vb} vs {va}", ta["name"]);
        }
    }
    // `palisade predict` under the launcher splits the model over its ranks: greedy, beam
    // and sampled answers as one process gives them, printed once.
    let ckpt = one.join("checkpoints/step-00000006");
    let img = d.join("scene.png");
    crate::pali::image_file(&img);
    let asks: [&[&str]; 3] = [
        &["--prompt", "caption en"],
        &["--prompt", "detect red square", "--beams", "2"],
        &[
            "--prompt",
            "answer en what colour is it?",
            "--temperature",
            "0.7",
        ],
    ];
    let predict = |n: &str, ask: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_palisade"));
        if n != "1" {
            cmd.args(["launch", "--nproc-per-node", n, "--"]);
        }
        cmd.current_dir(d)
            .env("RUST_LOG", "warn")
            .args(["predict", "--checkpoint", ckpt.to_str().unwrap()])
            .args(["--image", img.to_str().unwrap(), "--max-new-tokens", "6"])
            .args(ask);
        cmd.output().expect("palisade runs")
    };
    for ask in asks {
        let alone = predict("1", ask);
        assert!(alone.status.success(), "{}", text(&alone));
        let split = predict("2", ask);
        assert!(split.status.success(), "{ask:?}: {}", text(&split));
        let want: Vec<String> = String::from_utf8_lossy(&alone.stdout)
            .lines()
            .map(|l| format!("[rank 0] {l}"))
            .collect();
        // The text, and for the detect prompt its box (or why there is none).
        let lines = if ask[1].starts_with("detect") { 2 } else { 1 };
        assert_eq!(want.len(), lines, "{ask:?}: {want:?}");
        let got = String::from_utf8_lossy(&split.stdout);
        assert_eq!(got.lines().collect::<Vec<_>>(), want, "{ask:?}");
    }
    // Three ranks cannot split four heads: refused naming the dimension.
    let out = predict("3", asks[0]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("3 does not divide") && said.contains("num_attention_heads (4)"),
        "{said}"
    );
}
