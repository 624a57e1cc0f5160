//! PaLI on synthetic video end to end: clips of moving shapes are generated, a tiny model trains
//! on 4-frame samples (loss falls), an interrupted run resumes to the same weights, and the
//! checkpoint predicts from frames given with `--frames`.

use crate::common::*;
use std::path::Path;

/// A tiny PaLI experiment on synthetic video captioning and VQA, data in `d`.
fn video_config(d: &Path) -> std::path::PathBuf {
    let demo = repo().join("configs/demo/pali_video.yaml");
    let x = d.display();
    let yaml = format!(
        "base: {}\nname: tiny_video\nthreads: 1\n\
         model:\n  vision: {{preset: mu, image_size: 16, patch_size: 8}}\n  language: {{preset: mu}}\n\
         data:\n  tokenizer: {x}/video/tokenizer.json\n  threads: 1\n  text_len: 12\n  target_len: 8\n\
         \x20 mixture:\n\
         \x20   caption: {{train: {x}/video/train/caption/*.parquet, spec: video, format: {{kind: caption}}, frames: 4, weight: 1}}\n\
         \x20   vqa: {{train: {x}/video/train/vqa/*.parquet, spec: video, format: {{kind: vqa}}, frames: 4, weight: 1}}\n\
         \x20 synth: {{kind: video, clip_frames: 6, train_dir: {x}/video/train, eval_dir: {x}/video/eval, train_rows: 96, eval_rows: 8, image_size: 16, vocab_size: 64}}\n\
         train: {{batch_size: 16, steps: 30, lr: 3.0e-3, warmup_steps: 3, log_every: 1, checkpoint_every: 10, keep_last: 4}}\n\
         eval:\n  batch_size: 4\n  decode: {{max_new_tokens: 6}}\n  examples: 2\n  tasks:\n\
         \x20   video_caption: {{kind: video_caption, data: {x}/video/eval/caption/*.parquet, frames: 4}}\n\
         \x20   video_qa: {{kind: video_qa, data: {x}/video/eval/vqa/*.parquet, frames: 4}}\n",
        demo.display()
    );
    let path = d.join("video.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn losses(run: &Path) -> Vec<f64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["split"] == "train")
        .map(|v| v["train/loss"].as_f64().unwrap())
        .collect()
}

#[test]
fn pali_trains_on_video_clips_resumes_exactly_and_predicts_from_frames() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = video_config(d);
    let (a, b) = straight_and_resumed(d, cfg.to_str().unwrap(), 17, &[]);
    let loss = losses(&a);
    assert_eq!(loss.len(), 30);
    let (first, last) = (
        loss[..3].iter().sum::<f64>() / 3.0,
        loss[25..].iter().sum::<f64>() / 5.0,
    );
    assert!(last < 0.7 * first, "loss {first:.3} → {last:.3}: {loss:?}");
    // Data order, frame choice and padding are the same after the interruption.
    let last_ckpt = "checkpoints/step-00000030/model.safetensors";
    let (wa, wb) = (
        read_tensors(&a.join(last_ckpt)),
        read_tensors(&b.join(last_ckpt)),
    );
    for (name, t) in &wa {
        assert!(
            max_abs_diff(t, &wb[name]) <= 1e-6,
            "{name} differs after resume"
        );
    }
    // The generated shards are video-spec clips.
    let json = palisade_ok(
        d,
        &[
            "data",
            "inspect",
            &format!("{}/video/train/vqa/*.parquet", d.display()),
            "--json",
            "--strict",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["spec"], "video");
    // Three frames of a square moving right.
    let frames: Vec<String> = (0..3)
        .map(|k| {
            let img = image::RgbImage::from_fn(16, 16, |x, y| {
                let left = 2 + 4 * k;
                if (left..left + 5).contains(&x) && (6..11).contains(&y) {
                    image::Rgb([220, 40, 40])
                } else {
                    image::Rgb([20, 20, 20])
                }
            });
            let p = d.join(format!("f{k}.png"));
            std::fs::write(&p, palisade_data::image_ops::encode_png(&img).unwrap()).unwrap();
            p.to_str().unwrap().to_string()
        })
        .collect();
    let ckpt = a.join("checkpoints/step-00000030");
    let mut args = vec![
        "predict",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--prompt",
        "caption en",
        "--max-new-tokens",
        "6",
        "--frames",
    ];
    args.extend(frames.iter().map(String::as_str));
    let out = palisade_ok(d, &args);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(!out.trim().is_empty(), "a caption comes out: {out:?}");
    // The final evaluation scored video captioning (CIDEr) and video QA over 4-frame clips.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("report/eval.json")).unwrap())
            .unwrap();
    let tasks = report["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2, "{report}");
    assert_eq!(tasks[0]["kind"], "video_caption");
    assert_eq!(tasks[0]["examples"], 8, "one caption row per clip");
    assert!(tasks[0]["metrics"]["cider"].is_number(), "{}", tasks[0]);
    assert_eq!(tasks[1]["kind"], "video_qa");
    assert!(
        tasks[1]["metrics"]["vqa_accuracy"].is_number(),
        "{}",
        tasks[1]
    );
    let example = &report["qualitative"][0];
    assert_eq!(example["frames"], 4, "{example}");
    // Frames on an image task are refused, naming the key.
    let bad = palisade(
        d,
        &[
            "eval",
            cfg.to_str().unwrap(),
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--set",
            "eval.tasks.video_qa.kind=vqa",
        ],
    );
    let err = text(&bad);
    assert!(
        !bad.status.success() && err.contains("eval.tasks.video_qa.frames"),
        "{err}"
    );
}
