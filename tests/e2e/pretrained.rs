//! Pretrained parts as the hub publishes them — config.json with defaults left out, bf16 weights
//! in shards with an index, SentencePiece tokenizers — imported, run and exported with
//! transformers as the oracle (`tests/oracles/hub_folders.py`), and assembled into a PaLI that
//! trains and predicts.

use crate::common::*;
use std::path::Path;

/// Largest relative difference of each output of `palisade forward` on `inputs` from `expected`.
fn forward_rel(d: &Path, checkpoint: &Path, inputs: &Path, expected: &Path) -> Vec<(String, f64)> {
    let out = d.join(format!(
        "out-{}.safetensors",
        checkpoint.file_name().unwrap().to_string_lossy()
    ));
    palisade_ok(
        d,
        &[
            "forward",
            "--checkpoint",
            checkpoint.to_str().unwrap(),
            "--inputs",
            inputs.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let got = read_tensors(&out);
    read_tensors(expected)
        .iter()
        .map(|(name, want)| {
            let g = got
                .get(name)
                .unwrap_or_else(|| panic!("forward wrote no {name}"));
            let scale = want.abs().max().double_value(&[]).max(1e-12);
            (name.clone(), max_abs_diff(g, want) / scale)
        })
        .collect()
}

fn assert_close(what: &str, rels: &[(String, f64)]) {
    for (name, r) in rels {
        assert!(
            *r <= 1e-4,
            "{what}: {name} differs from transformers by {r:e} (relative)"
        );
    }
}

fn import(d: &Path, family: &str, from: &Path, out: &Path) {
    palisade_ok(
        d,
        &[
            "import",
            family,
            from.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
}

/// A hub-shaped SigLIP of `shape` runs as published, imported and exported as transformers runs
/// it; returns the folder the oracle wrote.
fn siglip_round_trip(d: &Path, shape: &str) -> std::path::PathBuf {
    let s = d.join(shape);
    let made: serde_json::Value = serde_json::from_str(&oracle(
        "hub_folders.py",
        &["siglip", s.to_str().unwrap(), shape],
    ))
    .unwrap();
    // The hub's shape: defaults left out, several bf16 shards and an index.
    let vision_cfg = made["config"]["vision_config"].as_object().unwrap();
    assert!(!vision_cfg.contains_key("layer_norm_eps"), "{made}");
    assert!(made["files"].as_array().unwrap().len() > 3, "{made}");
    let (inputs, expected) = (s.join("inputs.safetensors"), s.join("expected.safetensors"));
    assert_close(
        &format!("{shape} as published"),
        &forward_rel(d, &s.join("hf"), &inputs, &expected),
    );
    let ours = s.join("ours");
    import(d, "hf-siglip", &s.join("hf"), &ours);
    assert_close(
        &format!("{shape} imported"),
        &forward_rel(d, &ours, &inputs, &expected),
    );
    // Exported in shards, it loads in transformers' SiglipModel with the same outputs.
    let exported = s.join("exported");
    palisade_ok(
        d,
        &[
            "export",
            "--checkpoint",
            ours.to_str().unwrap(),
            "--out",
            exported.to_str().unwrap(),
            "--max-shard-bytes",
            "50000000",
        ],
    );
    assert!(exported.join("model.safetensors.index.json").exists());
    let rel: serde_json::Value = serde_json::from_str(&oracle(
        "hub_folders.py",
        &[
            "check-siglip",
            exported.to_str().unwrap(),
            inputs.to_str().unwrap(),
            expected.to_str().unwrap(),
        ],
    ))
    .unwrap();
    for (k, v) in rel.as_object().unwrap() {
        assert!(v.as_f64().unwrap() <= 1e-4, "{shape} exported: {k} {v}");
    }
    s
}

#[test]
fn a_hub_siglip_base_folder_imports_runs_and_exports_as_transformers_does() {
    let dir = tempfile::tempdir().unwrap();
    siglip_round_trip(dir.path(), "base");
}

#[test]
fn a_hub_siglip_so400m_at_384_and_its_vision_tower_run_as_transformers_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = siglip_round_trip(d, "so400m");
    // A vision-only SiglipVisionModel folder (so400m/14 at 384 px: 27 × 27 patches).
    let (inputs, expected) = (
        s.join("inputs_vision.safetensors"),
        s.join("expected_vision.safetensors"),
    );
    assert_close(
        "vision tower",
        &forward_rel(d, &s.join("vision"), &inputs, &expected),
    );
    let ours = s.join("vision-ours");
    import(d, "hf-siglip", &s.join("vision"), &ours);
    assert_close(
        "vision tower imported",
        &forward_rel(d, &ours, &inputs, &expected),
    );
    // An architecture palisade does not implement is named, with what is supported.
    let cfg = s.join("hf/config.json");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("\"siglip\"", "\"siglip2\"");
    std::fs::write(&cfg, text).unwrap();
    let out = palisade(
        d,
        &[
            "import",
            "hf-siglip",
            s.join("hf").to_str().unwrap(),
            "--out",
            "x",
        ],
    );
    assert!(
        !out.status.success() && text_of(&out).contains("siglip2"),
        "{}",
        text_of(&out)
    );
    assert!(
        !d.join("x").exists(),
        "a failed import leaves nothing in --out"
    );
}

fn text_of(o: &std::process::Output) -> String {
    text(o)
}

#[test]
fn a_hub_t5_with_a_padded_vocabulary_and_its_sentencepiece_tokenizer_match_transformers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = d.join("t5");
    let made: serde_json::Value =
        serde_json::from_str(&oracle("hub_folders.py", &["t5", t.to_str().unwrap()])).unwrap();
    assert!(
        made["files"].as_array().unwrap().len() > 3,
        "sharded: {made}"
    );
    let hf = t.join("hf");
    let (inputs, expected) = (t.join("inputs.safetensors"), t.join("expected.safetensors"));
    assert_close("T5 as published", &forward_rel(d, &hf, &inputs, &expected));
    let ours = t.join("ours");
    import(d, "hf-t5", &hf, &ours);
    assert_close("T5 imported", &forward_rel(d, &ours, &inputs, &expected));
    // umT5: a relative-position bias in every layer, tied embeddings by default.
    let u = d.join("umt5");
    let made: serde_json::Value =
        serde_json::from_str(&oracle("hub_folders.py", &["umt5", u.to_str().unwrap()])).unwrap();
    assert!(
        made["config"].get("tie_word_embeddings").is_none(),
        "default left out: {made}"
    );
    assert_close(
        "umT5 as published",
        &forward_rel(
            d,
            &u.join("hf"),
            &u.join("inputs.safetensors"),
            &u.join("expected.safetensors"),
        ),
    );
    // The SentencePiece model read directly, and the hub's tokenizer.json, give transformers' ids.
    let ids: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.join("ids.json")).unwrap()).unwrap();
    let texts: Vec<&str> = ids["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for tokenizer in [hf.join("spiece.model"), hf.join("tokenizer.json")] {
        let mut args = vec!["tokenize", "--tokenizer", tokenizer.to_str().unwrap()];
        args.extend(&texts);
        let printed = palisade_ok(d, &args);
        let got: Vec<serde_json::Value> = printed
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            serde_json::Value::Array(got),
            ids["ids"],
            "{}",
            tokenizer.display()
        );
    }
}

#[test]
fn a_pali_assembled_from_hub_parts_keeps_every_pretrained_row_trains_and_predicts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (s, t) = (d.join("siglip"), d.join("t5"));
    oracle("hub_folders.py", &["siglip", s.to_str().unwrap(), "tiny"]);
    let made: serde_json::Value =
        serde_json::from_str(&oracle("hub_folders.py", &["t5", t.to_str().unwrap()])).unwrap();
    let (pieces, rows) = (
        made["pieces"].as_i64().unwrap(),
        made["rows"].as_i64().unwrap(),
    );
    let pali = d.join("pali");
    palisade_ok(
        d,
        &[
            "pali",
            "init",
            "--siglip",
            s.join("hf").to_str().unwrap(),
            "--t5",
            t.join("hf").to_str().unwrap(),
            "--out",
            pali.to_str().unwrap(),
        ],
    );
    let p = read_tensors(&pali.join("model.safetensors"));
    let lm = palisade_model::t5::T5Checkpoint::load(&t.join("hf"), tch::Device::Cpu).unwrap();
    let shared = &lm.vs.variables()["shared.weight"];
    let grown = &p["language_model.shared.weight"];
    // The tokenizer's own ids keep their pretrained rows exactly; the 1,024 location tokens
    // (and the rows that only padded the vocabulary) start afresh.
    assert_eq!(grown.size()[0], pieces + 1024);
    assert_eq!(shared.size()[0], rows);
    assert_eq!(
        max_abs_diff(&grown.narrow(0, 0, pieces), &shared.narrow(0, 0, pieces)),
        0.0
    );
    assert_eq!(p["language_model.lm_head.weight"].size()[0], pieces + 1024);
    // The ViT is the hub SigLIP's, its head dropped.
    let sig = palisade_model::SiglipModel::load(&s.join("hf"), tch::Device::Cpu).unwrap();
    let q = "vision_model.encoder.layers.0.self_attn.q_proj.weight";
    assert_eq!(max_abs_diff(&sig.vs.variables()[q], &p[q]), 0.0);
    assert!(!p.keys().any(|k| k.starts_with("vision_model.head.")));

    // The same parts through a training config: the synthetic task mixture, a few steps.
    let cfg = d.join("pali.yaml");
    let x = d.display();
    std::fs::write(
        &cfg,
        format!(
            "name: hub_pali\nstage: pali\nthreads: 1\n\
             model:\n  vision: {{image_size: 32}}\n  init_vision: {x}/siglip/hf\n  init_language: {x}/t5/hf\n\
             data:\n  tokenizer: {x}/t5/hf/spiece.model\n  threads: 1\n  text_len: 16\n  target_len: 12\n\
             \x20 mixture:\n\
             \x20   caption: {{train: {x}/tasks/train/caption/*.parquet, spec: caption, format: {{kind: caption}}}}\n\
             \x20   vqa: {{train: {x}/tasks/train/vqa/*.parquet, spec: vqa, format: {{kind: vqa}}}}\n\
             \x20 synth: {{train_dir: {x}/tasks/train, eval_dir: {x}/tasks/eval, train_rows: 32, eval_rows: 8, image_size: 32}}\n\
             train: {{batch_size: 8, steps: 40, lr: 3.0e-3, warmup_steps: 4, log_every: 10, checkpoint_every: 40, keep_last: 1}}\n\
             eval:\n  batch_size: 4\n  decode: {{max_new_tokens: 4}}\n  examples: 1\n  tasks:\n\
             \x20   vqa: {{kind: vqa, data: {x}/tasks/eval/vqa/*.parquet}}\n"
        ),
    )
    .unwrap();
    let run = d.join("run");
    palisade_ok(
        d,
        &[
            "train",
            cfg.to_str().unwrap(),
            "--run-dir",
            run.to_str().unwrap(),
            "--no-progress",
        ],
    );
    let ckpt = run.join("checkpoints/step-00000040");
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ckpt.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        stored["text_config"]["feed_forward_proj"], "gated-silu",
        "{stored}"
    );
    assert_eq!(stored["text_config"]["vocab_size"], pieces + 1024);
    // Exported as transformers folders, the parts load in SiglipVisionModel and
    // T5ForConditionalGeneration with palisade's outputs.
    let exported = d.join("exported");
    palisade_ok(
        d,
        &[
            "export",
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--out",
            exported.to_str().unwrap(),
        ],
    );
    assert!(exported.join("projector.safetensors").exists());
    tch::manual_seed(3);
    let inputs = [
        (
            "vision",
            vec![(
                "pixel_values",
                tch::Tensor::rand([2, 3, 32, 32], (tch::Kind::Float, tch::Device::Cpu)) * 2.0 - 1.0,
            )],
        ),
        (
            "language",
            vec![
                (
                    "input_ids",
                    tch::Tensor::randint(pieces, [2, 7], (tch::Kind::Int64, tch::Device::Cpu)),
                ),
                (
                    "decoder_input_ids",
                    tch::Tensor::randint(
                        pieces + 1024,
                        [2, 3],
                        (tch::Kind::Int64, tch::Device::Cpu),
                    ),
                ),
            ],
        ),
    ];
    for (part, tensors) in inputs {
        let folder = exported.join(part);
        let inp = d.join(format!("{part}-in.safetensors"));
        tch::Tensor::write_safetensors(&tensors, &inp).unwrap();
        let ours = d.join(format!("{part}-out.safetensors"));
        palisade_ok(
            d,
            &[
                "forward",
                "--checkpoint",
                folder.to_str().unwrap(),
                "--inputs",
                inp.to_str().unwrap(),
                "--out",
                ours.to_str().unwrap(),
            ],
        );
        let check = if part == "vision" {
            "check-vision"
        } else {
            "check-t5"
        };
        let rel: serde_json::Value = serde_json::from_str(&oracle(
            "hub_folders.py",
            &[
                check,
                folder.to_str().unwrap(),
                inp.to_str().unwrap(),
                ours.to_str().unwrap(),
            ],
        ))
        .unwrap();
        for (k, v) in rel.as_object().unwrap() {
            assert!(v.as_f64().unwrap() <= 1e-4, "exported {part}: {k} {v}");
        }
    }
    let image = d.join("scene.png");
    image::RgbImage::from_pixel(32, 32, image::Rgb([200, 30, 30]))
        .save(&image)
        .unwrap();
    let answer = palisade_ok(
        d,
        &[
            "predict",
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--image",
            image.to_str().unwrap(),
            "--prompt",
            "answer en what colour is the square?",
            "--max-new-tokens",
            "4",
        ],
    );
    // It answers (40 steps are too few to answer right).
    assert!(!answer.trim().is_empty(), "predict answers: {answer:?}");
}
