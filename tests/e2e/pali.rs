//! PaLI end to end: assemble a model folder, forward parity with transformers parts (image and
//! video), T5 export, resolution change, prediction.

use crate::common::*;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// A tokenizer from a few synthetic captions, and a `mu` PaLI folder built from it.
fn pali_folder(d: &Path) -> std::path::PathBuf {
    let data = d.join("shapes");
    palisade_ok(
        d,
        &[
            "data",
            "synth",
            "shapes",
            "--out",
            data.to_str().unwrap(),
            "--rows",
            "40",
            "--image-size",
            "32",
            "--vocab-size",
            "64",
        ],
    );
    let out = d.join("pali");
    palisade_ok(
        d,
        &[
            "pali",
            "init",
            "--preset",
            "mu",
            "--tokenizer",
            data.join("tokenizer.json").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    out
}

fn write_inputs(path: &Path, pixels: Tensor, vocab: i64) {
    let b = pixels.size()[0];
    let ids = Tensor::randint_low(3, vocab, [b, 6], (Kind::Int64, Device::Cpu));
    let mask = Tensor::ones([b, 6], (Kind::Int64, Device::Cpu));
    if b > 1 {
        let _ = mask.get(1).narrow(0, 4, 2).fill_(0);
    }
    let dec = Tensor::randint_low(3, vocab, [b, 5], (Kind::Int64, Device::Cpu));
    Tensor::write_safetensors(
        &[
            ("pixel_values", pixels),
            ("input_ids", ids),
            ("attention_mask", mask),
            ("decoder_input_ids", dec),
        ],
        path,
    )
    .unwrap();
}

#[test]
fn pali_forward_matches_transformers_parts_for_images_and_video() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pali = pali_folder(d);
    let t5 = d.join("t5");
    palisade_ok(
        d,
        &[
            "pali",
            "export-t5",
            "--checkpoint",
            pali.to_str().unwrap(),
            "--out",
            t5.to_str().unwrap(),
        ],
    );
    let resized = d.join("pali64");
    palisade_ok(
        d,
        &[
            "pali",
            "resize",
            "--checkpoint",
            pali.to_str().unwrap(),
            "--image-size",
            "64",
            "--out",
            resized.to_str().unwrap(),
        ],
    );
    let vocab = palisade_model::pali::PaliConfig::load(&pali.join("config.json"))
        .unwrap()
        .text_config
        .vocab_size as i64;
    tch::manual_seed(3);
    for (name, pixels) in [
        (
            "image",
            Tensor::rand([2, 3, 32, 32], (Kind::Float, Device::Cpu)) * 2.0 - 1.0,
        ),
        (
            "video",
            Tensor::rand([1, 3, 3, 32, 32], (Kind::Float, Device::Cpu)) * 2.0 - 1.0,
        ),
    ] {
        let inputs = d.join(format!("{name}.safetensors"));
        write_inputs(&inputs, pixels, vocab);
        let got = d.join(format!("{name}-got.safetensors"));
        palisade_ok(
            d,
            &[
                "forward",
                "--checkpoint",
                pali.to_str().unwrap(),
                "--inputs",
                inputs.to_str().unwrap(),
                "--out",
                got.to_str().unwrap(),
            ],
        );
        let want = d.join(format!("{name}-want.safetensors"));
        oracle(
            "pali_parity.py",
            &[
                pali.to_str().unwrap(),
                t5.to_str().unwrap(),
                inputs.to_str().unwrap(),
                want.to_str().unwrap(),
                resized.to_str().unwrap(),
            ],
        );
        let (got, want) = (read_tensors(&got), read_tensors(&want));
        let diff = max_abs_diff(&got["logits"], &want["logits"]);
        assert!(
            diff < 1e-4,
            "{name}: max |palisade − transformers| = {diff:e}"
        );
        // The resized checkpoint's position embedding is torch's bilinear resize of the original.
        let pe = &read_tensors(&resized.join("model.safetensors"))
            ["vision_model.embeddings.position_embedding.weight"];
        assert_eq!(pe.size()[0], 16);
        assert!(max_abs_diff(pe, &want["posemb"]) < 1e-6);
    }
    // The resized model runs at its new resolution.
    let inputs = d.join("big.safetensors");
    write_inputs(
        &inputs,
        Tensor::zeros([1, 3, 64, 64], (Kind::Float, Device::Cpu)),
        vocab,
    );
    palisade_ok(
        d,
        &[
            "forward",
            "--checkpoint",
            resized.to_str().unwrap(),
            "--inputs",
            inputs.to_str().unwrap(),
            "--out",
            d.join("big-out.safetensors").to_str().unwrap(),
        ],
    );
}

#[test]
fn predict_runs_for_images_and_video_and_names_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pali = pali_folder(d);
    let img = d.join("img.png");
    image_file(&img);
    let p = pali.to_str().unwrap();
    let out = palisade_ok(
        d,
        &[
            "predict",
            "--checkpoint",
            p,
            "--image",
            img.to_str().unwrap(),
            "--prompt",
            "caption en",
            "--max-new-tokens",
            "5",
        ],
    );
    assert_eq!(out.lines().count(), 1, "{out}");
    let out = palisade_ok(
        d,
        &[
            "predict",
            "--checkpoint",
            p,
            "--frames",
            img.to_str().unwrap(),
            img.to_str().unwrap(),
            "--prompt",
            "detect red circle",
            "--beams",
            "2",
            "--max-new-tokens",
            "4",
        ],
    );
    assert!(
        out.contains("box"),
        "a detect prompt reports a box or why there is none: {out}"
    );
    let bad = d.join("bad.png");
    std::fs::write(&bad, b"not an image").unwrap();
    let o = palisade(
        d,
        &[
            "predict",
            "--checkpoint",
            p,
            "--image",
            bad.to_str().unwrap(),
            "--prompt",
            "caption en",
        ],
    );
    assert!(
        !o.status.success() && text(&o).contains("bad.png"),
        "{}",
        text(&o)
    );
    let long = "red ".repeat(300);
    let o = palisade(
        d,
        &[
            "predict",
            "--checkpoint",
            p,
            "--image",
            img.to_str().unwrap(),
            "--prompt",
            &long,
        ],
    );
    assert!(
        !o.status.success() && text(&o).contains("limit"),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains("panicked"));
}

pub(crate) fn image_file(path: &Path) {
    // A 40×30 PNG: a red square on black.
    let img = image::RgbImage::from_fn(40, 30, |x, y| {
        if (10..20).contains(&x) && (5..15).contains(&y) {
            image::Rgb([255, 0, 0])
        } else {
            image::Rgb([0, 0, 0])
        }
    });
    std::fs::write(path, palisade_data::image_ops::encode_png(&img).unwrap()).unwrap();
}

#[test]
fn a_stage0_siglip_checkpoint_initialises_the_vit_at_a_new_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let trained = trained_run();
    let siglip = trained.run.join("checkpoints/step-00000006");
    let pali = d.join("pali");
    // The SigLIP model ran at 16 px (2×2 patches of 8); the PaLI model runs at 32 px (4×4).
    palisade_ok(
        d,
        &[
            "pali",
            "init",
            "--preset",
            "mu",
            "--tokenizer",
            trained.dir.join("data/tokenizer.json").to_str().unwrap(),
            "--siglip",
            siglip.to_str().unwrap(),
            "--image-size",
            "32",
            "--out",
            pali.to_str().unwrap(),
        ],
    );
    let s = read_tensors(&siglip.join("model.safetensors"));
    let p = read_tensors(&pali.join("model.safetensors"));
    let name = "vision_model.encoder.layers.0.self_attn.q_proj.weight";
    assert_eq!(
        max_abs_diff(&s[name], &p[name]),
        0.0,
        "ViT weights are copied"
    );
    assert!(!p
        .keys()
        .any(|k| k.starts_with("vision_model.head.") || k.starts_with("text_model.")));
    let pe = "vision_model.embeddings.position_embedding.weight";
    assert_eq!((s[pe].size()[0], p[pe].size()[0]), (4, 16));
    // The mean of a bilinear upsampling equals the mean of the grid it came from.
    let (ms, mp) = (
        s[pe].mean(Kind::Float).double_value(&[]),
        p[pe].mean(Kind::Float).double_value(&[]),
    );
    assert!((ms - mp).abs() < 1e-5, "{ms} vs {mp}");
}

/// A tiny PaLI experiment over the synthetic task mixture, data in `d`.
pub(crate) fn pali_config(d: &Path) -> std::path::PathBuf {
    let demo = repo().join("configs/demo/pali_shapes.yaml");
    let x = d.display();
    let yaml = format!(
        "base: {}\nname: tiny_pali\nthreads: 1\n\
         model:\n  vision: {{preset: mu, image_size: 16, patch_size: 8}}\n  language: {{preset: mu}}\n\
         data:\n  tokenizer: {x}/tasks/tokenizer.json\n  threads: 1\n  text_len: 12\n  target_len: 8\n\
         \x20 mixture:\n\
         \x20   caption: {{train: {x}/tasks/train/caption/*.parquet, spec: caption, format: {{kind: caption}}, weight: 1}}\n\
         \x20   vqa: {{train: {x}/tasks/train/vqa/*.parquet, spec: vqa, format: {{kind: vqa}}, weight: 1}}\n\
         \x20   refcoco: {{train: {x}/tasks/train/refcoco/*.parquet, spec: refcoco, format: {{kind: detect}}, weight: 1}}\n\
         \x20 synth: {{train_dir: {x}/tasks/train, eval_dir: {x}/tasks/eval, train_rows: 64, eval_rows: 16, image_size: 16, vocab_size: 64}}\n\
         train: {{batch_size: 8, steps: 6, warmup_steps: 2, log_every: 1, checkpoint_every: 3, keep_last: 3, freeze_vision: true, eval_every: 3}}\n\
         eval:\n  batch_size: 5\n  decode: {{max_new_tokens: 5}}\n  examples: 2\n  tasks:\n\
         \x20   caption: {{kind: caption, data: {x}/tasks/eval/caption/*.parquet}}\n\
         \x20   vqa: {{kind: vqa, data: {x}/tasks/eval/vqa/*.parquet}}\n\
         \x20   refcoco: {{kind: refcoco, data: {x}/tasks/eval/refcoco/*.parquet}}\n",
        demo.display()
    );
    let path = d.join("pali.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

#[test]
fn pali_trains_on_the_task_mixture_resumes_exactly_and_predicts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = pali_config(d);
    let cfg = cfg.to_str().unwrap();
    let (a, b) = straight_and_resumed(d, cfg, 4, &[]);
    let (wa, wb) = (
        read_tensors(&a.join("checkpoints/step-00000006/model.safetensors")),
        read_tensors(&b.join("checkpoints/step-00000006/model.safetensors")),
    );
    for (name, t) in &wa {
        assert!(
            max_abs_diff(t, &wb[name]) <= 1e-6,
            "{name} differs after resume"
        );
    }
    // The ViT stayed frozen (stage 1): its weights equal the first checkpoint's.
    let first = read_tensors(&a.join("checkpoints/step-00000003/model.safetensors"));
    let vit = "vision_model.encoder.layers.0.mlp.fc1.weight";
    assert_eq!(max_abs_diff(&first[vit], &wa[vit]), 0.0);
    let lm = "language_model.shared.weight";
    assert!(max_abs_diff(&first[lm], &wa[lm]) > 0.0);
    // The mixture's position (batches drawn, each dataset's cursor) is in state.json.
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(a.join("checkpoints/step-00000006/state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["data_cursors"][0]["batches"], 6);
    assert_eq!(
        state["data_cursors"][0]["datasets"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // A checkpoint folder is a PaLI model folder: predict runs on it.
    let img = d.join("img.png");
    image_file(&img);
    let ckpt = a.join("checkpoints/step-00000006");
    let out = palisade_ok(
        d,
        &[
            "predict",
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--image",
            img.to_str().unwrap(),
            "--prompt",
            "answer en how many shapes are there?",
            "--max-new-tokens",
            "4",
        ],
    );
    assert_eq!(out.lines().count(), 1, "{out}");
    check_final_report(&a);
    eval_is_the_same_on_one_and_two_ranks(d, cfg, &ckpt);
}

/// The run's final evaluation scored every task, logged it, and saved example images.
fn check_final_report(run: &Path) {
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report/eval.json")).unwrap())
            .unwrap();
    let tasks = report["tasks"].as_array().unwrap();
    let names: Vec<&str> = tasks.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["caption", "refcoco", "vqa"]);
    for t in tasks {
        let headline = t["headline"].as_str().unwrap();
        let v = t["metrics"][headline].as_f64().unwrap();
        assert!((0.0..=10.0).contains(&v), "{t}");
        // One caption row per scene; VQA and RefCOCO have one row per question / object.
        let rows = t["examples"].as_u64().unwrap();
        assert!(
            if t["name"] == "caption" {
                rows == 16
            } else {
                rows >= 16
            },
            "{t}"
        );
        assert!(t["metrics"]["loss"].as_f64().unwrap() > 0.0, "{t}");
    }
    // VQA is broken down by answer type; RefCOCO reports its invalid-output rate.
    assert!(
        tasks[2]["metrics"]["vqa_accuracy/number"].is_number(),
        "{}",
        tasks[2]
    );
    assert!(
        tasks[1]["metrics"]["invalid_rate"].is_number(),
        "{}",
        tasks[1]
    );
    let examples = report["qualitative"].as_array().unwrap();
    assert_eq!(examples.len(), 6, "two per task");
    for e in examples {
        let png = run.join("report").join(e["image"].as_str().unwrap());
        let img = image::open(&png).unwrap();
        assert_eq!((img.width(), img.height()), (16, 16), "{}", png.display());
    }
    assert!(examples
        .iter()
        .any(|e| e["task"] == "refcoco" && e["true_box"].is_object()));
    // Training ends with the HTML page: example images with boxes, the task table.
    let html = std::fs::read_to_string(run.join("report/index.html")).unwrap();
    assert!(
        html.matches("data:image/png;base64,").count() >= 6,
        "too few images"
    );
    assert!(
        html.contains("acc@0.5") && html.contains("detect "),
        "tables missing"
    );
    let md = std::fs::read_to_string(run.join("report/eval.md")).unwrap();
    assert!(
        md.contains("PaLI evaluation") && md.contains("**cider"),
        "{md}"
    );
    // Periodic (step 3) and final (step 6) evaluations are in the metric log.
    let log = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let evals: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["split"] == "eval")
        .collect();
    let steps: Vec<u64> = evals.iter().map(|v| v["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [3, 6]);
    assert!(evals[1]["eval/refcoco/acc@0.5"].is_number(), "{}", evals[1]);
}

/// `palisade eval` on two ranks (each decoding its share, statistics gathered) reports what one
/// process reports, over a held-out set of several row groups.
fn eval_is_the_same_on_one_and_two_ranks(d: &Path, cfg: &str, ckpt: &Path) {
    palisade_ok(
        d,
        &[
            "data",
            "synth",
            "tasks",
            "--out",
            "held",
            "--rows",
            "24",
            "--rows-per-group",
            "5",
            "--image-size",
            "16",
            "--seed",
            "9",
            "--vocab-size",
            "64",
        ],
    );
    let sets = [
        "--set",
        "eval.tasks.caption.data=held/caption",
        "--set",
        "eval.tasks.vqa.data=held/vqa",
        "--set",
        "eval.tasks.refcoco.data=held/refcoco",
    ];
    let ck = ckpt.to_str().unwrap();
    let mut one = vec!["eval", cfg, "--checkpoint", ck, "--out", "one"];
    one.extend(sets);
    let printed = palisade_ok(d, &one);
    assert!(printed.contains("| vqa | vqa |"), "{printed}");
    let mut two = vec![
        "launch",
        "--nproc-per-node",
        "2",
        "--",
        "eval",
        cfg,
        "--checkpoint",
        ck,
    ];
    two.extend(["--out", "two"]);
    two.extend(sets);
    palisade_ok(d, &two);
    let read = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(d.join(f).join("eval.json")).unwrap())
            .unwrap()
    };
    let (a, b) = (read("one"), read("two"));
    assert_eq!(a["tasks"][0]["examples"], 24, "one caption row per scene");
    // A task whose shards do not exist stops the run before any decoding, naming the task.
    let out = palisade(
        d,
        &[
            "eval",
            cfg,
            "--checkpoint",
            ck,
            "--out",
            "bad",
            "--set",
            "eval.tasks.vqa.data=held/none/*.parquet",
        ],
    );
    let err = text(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("key eval.tasks.vqa") && err.contains("held/none"),
        "{err}"
    );
    assert!(
        !err.contains("loader ready"),
        "decoded before failing: {err}"
    );
    assert!(!d.join("bad/eval.json").exists());
    assert_eq!(a["examples"], b["examples"]);
    for (ta, tb) in a["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .zip(b["tasks"].as_array().unwrap())
    {
        assert_eq!(ta["examples"], tb["examples"]);
        for (k, va) in ta["metrics"].as_object().unwrap() {
            let (va, vb) = (va.as_f64().unwrap(), tb["metrics"][k].as_f64().unwrap());
            // The loss sums per-batch means, so it may differ in the last bits.
            let tol = if k == "loss" { 1e-5 } else { 1e-12 };
            assert!((va - vb).abs() <= tol, "{} {k}: {va} vs {vb}", ta["name"]);
        }
    }
}
