//! The PaLI-3 recipe in one YAML (configs/demo/pali3_recipe.yaml, steps and rows cut): every
//! stage's run folder and the comparison page, stage 1's frozen ViT equal to stage 0's, stage
//! 2 at the new resolution, and a run interrupted in stage 2 resumed to the same weights.

use crate::common::*;
use std::path::{Path, PathBuf};

const STAGES: [(&str, u64); 5] = [
    ("00-siglip", 20),
    ("01-stage1", 16),
    ("02-stage2", 10),
    ("03-vqa", 6),
    ("04-refcoco", 6),
];

/// `palisade train` of the demo recipe, cut to seconds, into `run` with `extra` arguments.
fn recipe(d: &Path, run: &Path, extra: &[&str]) -> std::process::Output {
    let cfg = repo().join("configs/demo/pali3_recipe.yaml");
    let mut args: Vec<String> = vec![
        "train".into(),
        cfg.to_str().unwrap().into(),
        "--run-dir".into(),
        run.to_str().unwrap().into(),
        "--no-progress".into(),
    ];
    let sets = [
        "threads=1".to_string(),
        "train.warmup_steps=2".into(),
        "train.checkpoint_every=5".into(),
        "train.log_every=1".into(),
        "stages.siglip.data.synth.train_rows=512".into(),
        "stages.siglip.data.synth.eval_rows=64".into(),
    ]
    .into_iter()
    .chain(
        STAGES
            .iter()
            .map(|(s, n)| format!("stages.{}.train.steps={n}", &s[3..])),
    )
    .chain(["stage1", "stage2"].iter().flat_map(|s| {
        [
            format!("stages.{s}.data.synth.train_rows=256"),
            format!("stages.{s}.data.synth.eval_rows=16"),
        ]
    }));
    for s in sets {
        args.extend(["--set".into(), s]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    palisade(d, &args)
}

fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "{}", text(&out));
    text(&out)
}

fn final_dir(run: &Path, stage: &str) -> PathBuf {
    let steps = STAGES.iter().find(|(s, _)| *s == stage).unwrap().1;
    run.join("stages")
        .join(stage)
        .join(format!("checkpoints/step-{steps:08}"))
}

/// Every metric stands beside what it is without the image, retrieval beside its ceiling.
fn honest_numbers(run: &Path) {
    let eval = |stage: &str| -> serde_json::Value {
        let p = run.join("stages").join(stage).join("report/eval.json");
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let siglip = eval("00-siglip");
    for r in siglip["retrieval"].as_array().unwrap() {
        let (chance, ceiling) = (r["chance"].as_f64().unwrap(), r["ceiling"].as_f64());
        let ceiling = ceiling.unwrap_or_else(|| panic!("a synthetic set has a ceiling: {r}"));
        assert!(chance < ceiling && ceiling <= 1.0, "{r}");
        // An expectation, so a lucky model may pass it a little; far above means it is wrong.
        assert!(r["recall"].as_f64().unwrap() <= ceiling + 0.05, "{r}");
    }
    let stage1 = eval("01-stage1");
    let tasks = stage1["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 3);
    for t in tasks {
        let head = t["headline"].as_str().unwrap();
        let blind = t["blind"][head].as_f64();
        let blind = blind.unwrap_or_else(|| panic!("a blind baseline beside {head}: {t}"));
        assert!(blind.is_finite() && blind >= 0.0, "{t}");
    }
    // The per-type prior answers some questions right: count and colour answers repeat.
    let vqa = tasks.iter().find(|t| t["kind"] == "vqa").unwrap();
    assert!(
        vqa["blind"]["vqa_accuracy"].as_f64().unwrap() > 0.1,
        "{vqa}"
    );
    let md = std::fs::read_to_string(run.join("stages/01-stage1/report/eval.md")).unwrap();
    assert!(md.contains("without the image"), "{md}");
}

#[test]
fn the_recipe_runs_every_stage_chained_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = d.join("a");
    ok(recipe(d, &a, &[]));
    for (stage, _) in STAGES {
        let s = a.join("stages").join(stage);
        for f in ["config.yaml", "metrics.jsonl", "tb", "report/eval.json"] {
            assert!(s.join(f).exists(), "{stage}: {f}");
        }
        assert!(final_dir(&a, stage).join("state.json").exists(), "{stage}");
    }
    let page = std::fs::read_to_string(a.join("report/comparison.md")).unwrap();
    for (stage, _) in STAGES {
        assert!(page.contains(&format!("| {stage} |")), "{page}");
    }
    assert!(a.join("report/index.html").exists());
    honest_numbers(&a);

    // Stage 1 starts from stage 0's ViT and keeps it frozen.
    let vit0 = read_tensors(&final_dir(&a, "00-siglip").join("model.safetensors"));
    let vit1 = read_tensors(&final_dir(&a, "01-stage1").join("model.safetensors"));
    let shared: Vec<&String> = vit1
        .keys()
        .filter(|k| k.starts_with("vision_model."))
        .collect();
    assert!(shared.len() > 10);
    for k in shared {
        assert_eq!(max_abs_diff(&vit0[k], &vit1[k]), 0.0, "{k}");
    }
    // Stage 2 runs at 48 px: a 6 × 6 grid of position embeddings.
    let vit2 = read_tensors(&final_dir(&a, "02-stage2").join("model.safetensors"));
    let pos = &vit2["vision_model.embeddings.position_embedding.weight"];
    assert_eq!(pos.size()[0], 36);

    // Stages run one by one, stage 2 stopped half-way, then the whole recipe resumed.
    let b = d.join("b");
    ok(recipe(d, &b, &["--stage", "siglip"]));
    ok(recipe(d, &b, &["--stage", "stage1"]));
    ok(recipe(d, &b, &["--stage", "stage2", "--stop-at-step", "5"]));
    assert!(!final_dir(&b, "02-stage2").exists());
    let resumed = ok(recipe(d, &b, &["--resume"]));
    assert!(resumed.contains("01-stage1 already finished"), "{resumed}");
    for stage in ["02-stage2", "03-vqa", "04-refcoco"] {
        for f in ["model.safetensors", "optimizer.safetensors"] {
            same_tensors(
                &final_dir(&a, stage).join(f),
                &final_dir(&b, stage).join(f),
                &format!("{stage} {f}"),
            );
        }
        let m = |r: &Path| train_steps(&r.join("stages").join(stage).join("metrics.jsonl"));
        assert_eq!(m(&a), m(&b), "{stage}: every logged loss");
    }
}

#[test]
fn recipe_mistakes_are_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = d.join("run");
    let fails = |out: std::process::Output, needle: &str| {
        let t = text(&out);
        assert!(!out.status.success(), "{t}");
        assert!(t.contains(needle), "should mention {needle:?}:\n{t}");
    };
    fails(
        recipe(d, &run, &["--set", "stages.stage1.stage=nope"]),
        "pali3_recipe.yaml (stage stage1): key stage: \"nope\" is not a stage kind",
    );
    fails(
        recipe(d, &run, &["--stage", "stage9"]),
        "--stage stage9: not a stage of this recipe (siglip, stage1, stage2, vqa, refcoco)",
    );
    fails(
        recipe(d, &run, &["--stage", "stage2"]),
        "stage stage2 starts from stage stage1's final checkpoint",
    );
    fails(
        recipe(d, &run, &["--set", "stages.vqa.from=stage7"]),
        "from: \"stage7\" is not an earlier stage",
    );
    assert!(!run.join("stages").exists(), "nothing trained");
}
