//! A random transformers SiglipModel, imported and run by palisade, agrees with transformers.

use crate::common::*;

#[test]
fn siglip_import_and_forward_match_transformers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    oracle("siglip_parity.py", &[d.to_str().unwrap()]);
    let hf = d.join("hf");
    let ours = d.join("ours");
    palisade_ok(
        d,
        &[
            "import",
            "hf-siglip",
            hf.to_str().unwrap(),
            "--out",
            ours.to_str().unwrap(),
        ],
    );
    // The imported folder is itself a transformers folder: same tensor names.
    let hf_names: Vec<String> = read_tensors(&hf.join("model.safetensors"))
        .into_keys()
        .collect();
    let our_names: Vec<String> = read_tensors(&ours.join("model.safetensors"))
        .into_keys()
        .collect();
    assert_eq!(hf_names, our_names);

    let got = d.join("got.safetensors");
    palisade_ok(
        d,
        &[
            "forward",
            "--checkpoint",
            ours.to_str().unwrap(),
            "--inputs",
            d.join("inputs.safetensors").to_str().unwrap(),
            "--out",
            got.to_str().unwrap(),
        ],
    );
    let want = read_tensors(&d.join("expected.safetensors"));
    let got = read_tensors(&got);
    for name in [
        "image_embeds",
        "text_embeds",
        "logits_per_image",
        "logits_per_text",
    ] {
        let diff = max_abs_diff(&got[name], &want[name]);
        assert!(
            diff < 1e-4,
            "{name}: max |palisade − transformers| = {diff:e}"
        );
    }
}

#[test]
fn forward_with_only_images_writes_only_image_embeds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    oracle("siglip_parity.py", &[d.to_str().unwrap()]);
    let ours = d.join("ours");
    palisade_ok(
        d,
        &[
            "import",
            "hf-siglip",
            d.join("hf").to_str().unwrap(),
            "--out",
            ours.to_str().unwrap(),
        ],
    );
    let inputs = read_tensors(&d.join("inputs.safetensors"));
    let only = d.join("only_pixels.safetensors");
    tch::Tensor::write_safetensors(&[("pixel_values", &inputs["pixel_values"])], &only).unwrap();
    let out = d.join("out.safetensors");
    palisade_ok(
        d,
        &[
            "forward",
            "--checkpoint",
            ours.to_str().unwrap(),
            "--inputs",
            only.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let names: Vec<String> = read_tensors(&out).into_keys().collect();
    assert_eq!(names, vec!["image_embeds".to_string()]);
}

#[test]
fn t5_import_matches_transformers_for_both_variants() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    oracle("t5_parity.py", &[d.to_str().unwrap()]);
    for variant in ["relu", "gated"] {
        let v = d.join(variant);
        let ours = v.join("ours");
        palisade_ok(
            d,
            &[
                "import",
                "hf-t5",
                v.join("hf").to_str().unwrap(),
                "--out",
                ours.to_str().unwrap(),
            ],
        );
        let ckpt = palisade_model::t5::T5Checkpoint::load(&ours, tch::Device::Cpu).unwrap();
        let inputs = read_tensors(&v.join("inputs.safetensors"));
        let want = &read_tensors(&v.join("expected.safetensors"))["logits"];
        let got = tch::no_grad(|| {
            ckpt.model.forward(
                &inputs["input_ids"],
                &inputs["attention_mask"],
                &inputs["decoder_input_ids"],
            )
        });
        let diff = max_abs_diff(&got, want);
        assert!(
            diff < 1e-4,
            "{variant}: max |palisade − transformers| = {diff:e}"
        );
        // Incremental decoding with the key/value cache gives the same logits, position by position.
        let enc = ckpt.model.encode(
            &ckpt.model.embed(&inputs["input_ids"]),
            &inputs["attention_mask"],
        );
        let mut cache = ckpt.model.start_cache(&enc);
        let dec = &inputs["decoder_input_ids"];
        let steps: Vec<tch::Tensor> = (0..dec.size()[1])
            .map(|t| {
                tch::no_grad(|| {
                    ckpt.model.decode_step(
                        &dec.narrow(1, t, 1),
                        &enc,
                        &inputs["attention_mask"],
                        &mut cache,
                    )
                })
            })
            .collect();
        let diff = max_abs_diff(&tch::Tensor::cat(&steps, 1), want);
        assert!(diff < 1e-4, "{variant} with cache: {diff:e}");
    }
}

#[test]
fn t5_generation_matches_transformers_generate() {
    use palisade_model::decoding::{generate, GenerateConfig, Strategy};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    oracle("t5_parity.py", &[d.to_str().unwrap()]);
    for variant in ["relu", "gated"] {
        let v = d.join(variant);
        let ours = v.join("ours");
        palisade_ok(
            d,
            &[
                "import",
                "hf-t5",
                v.join("hf").to_str().unwrap(),
                "--out",
                ours.to_str().unwrap(),
            ],
        );
        let ckpt = palisade_model::t5::T5Checkpoint::load(&ours, tch::Device::Cpu).unwrap();
        let inputs = read_tensors(&v.join("inputs.safetensors"));
        let expected = read_tensors(&v.join("expected.safetensors"));
        let mask = &inputs["attention_mask"];
        let enc = tch::no_grad(|| {
            ckpt.model
                .encode(&ckpt.model.embed(&inputs["input_ids"]), mask)
        });
        for (name, strategy) in [
            ("greedy", Strategy::Greedy),
            (
                "beam3",
                Strategy::Beam {
                    beams: 3,
                    length_penalty: 1.0,
                },
            ),
        ] {
            let want: Vec<Vec<i64>> = Vec::<Vec<i64>>::try_from(&expected[name])
                .unwrap()
                .into_iter()
                .map(|r| r.into_iter().filter(|&t| t >= 0).collect())
                .collect();
            for use_cache in [true, false] {
                let cfg = GenerateConfig {
                    strategy,
                    max_new_tokens: 12,
                    use_cache,
                };
                let got = generate(&ckpt.model, &enc, mask, &cfg).unwrap();
                assert_eq!(got, want, "{variant} {name} use_cache={use_cache}");
            }
        }
    }
}
