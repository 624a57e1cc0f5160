//! `palisade score` on small files in the official formats, cross-checked against the oracles.

use crate::common::*;
use serde_json::json;

fn write(path: &std::path::Path, v: serde_json::Value) {
    std::fs::write(path, serde_json::to_string(&v).unwrap()).unwrap();
}

#[test]
fn caption_scores_equal_pycocoevalcap_and_missing_predictions_count_as_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let refs = d.join("captions.json");
    write(
        &refs,
        json!({"annotations": [
        {"image_id": 1, "caption": "A red circle on the left."},
        {"image_id": 1, "caption": "a small red circle"},
        {"image_id": 2, "caption": "Two blue squares, top right!"},
        {"image_id": 2, "caption": "blue squares at the top"},
        {"image_id": 3, "caption": "a green cross"}]}),
    );
    let preds = d.join("results.json");
    write(
        &preds,
        json!([{"image_id": 1, "caption": "a red circle"}, {"image_id": 2, "caption": "two blue squares at the top"}]),
    );
    let v: serde_json::Value = serde_json::from_str(&palisade_ok(
        d,
        &[
            "score",
            "caption",
            "--predictions",
            preds.to_str().unwrap(),
            "--references",
            refs.to_str().unwrap(),
        ],
    ))
    .unwrap();
    assert_eq!(v["missing_predictions"], 1);
    assert_eq!(v["images"], 3);
    // The same numbers from pycocoevalcap on our tokenization (image 3 with an empty caption).
    let input = d.join("oracle.json");
    write(
        &input,
        json!({"datasets": [{
        "gts": {"1": ["a red circle on the left", "a small red circle"], "2": ["two blue squares top right", "blue squares at the top"], "3": ["a green cross"]},
        "res": {"1": ["a red circle"], "2": ["two blue squares at the top"], "3": [""]}}]}),
    );
    let want: serde_json::Value = serde_json::from_str(&oracle(
        "coco_caption_scores.py",
        &[input.to_str().unwrap()],
    ))
    .unwrap();
    let num = |v: &serde_json::Value| {
        v.as_f64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .unwrap()
    };
    let w = &want[0];
    assert!(
        (v["CIDEr"].as_f64().unwrap() - num(&w["cider"])).abs() < 1e-9,
        "{v} vs {w}"
    );
    assert!(
        (v["ROUGE_L"].as_f64().unwrap() - num(&w["rouge"])).abs() < 1e-9,
        "{v} vs {w}"
    );
    assert!(
        (v["Bleu_4"].as_f64().unwrap() - num(&w["bleu"][3])).abs() < 1e-9,
        "{v} vs {w}"
    );
    // An unknown image is an error naming the file and entry.
    write(&preds, json!([{"image_id": 9, "caption": "x"}]));
    let o = palisade(
        d,
        &[
            "score",
            "caption",
            "--predictions",
            preds.to_str().unwrap(),
            "--references",
            refs.to_str().unwrap(),
        ],
    );
    assert!(
        !o.status.success() && text(&o).contains("results.json") && text(&o).contains("image_id 9"),
        "{}",
        text(&o)
    );
}

#[test]
fn vqa_and_refcoco_scores_from_official_formats() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let q = d.join("q.json");
    let a = d.join("a.json");
    let p = d.join("p.json");
    write(
        &q,
        json!({"questions": [{"question_id": 10, "image_id": 1, "question": "how many?"}, {"question_id": 11, "image_id": 1, "question": "what color?"}]}),
    );
    let answers = |x: &str| {
        (0..10)
            .map(|i| json!({"answer": x, "answer_id": i + 1}))
            .collect::<Vec<_>>()
    };
    write(
        &a,
        json!({"annotations": [
        {"question_id": 10, "question_type": "how many", "answer_type": "number", "answers": answers("2")},
        {"question_id": 11, "question_type": "what color", "answer_type": "other", "answers": answers("red")}]}),
    );
    write(&p, json!([{"question_id": 10, "answer": "two"}]));
    let v: serde_json::Value = serde_json::from_str(&palisade_ok(
        d,
        &[
            "score",
            "vqa",
            "--predictions",
            p.to_str().unwrap(),
            "--questions",
            q.to_str().unwrap(),
            "--references",
            a.to_str().unwrap(),
        ],
    ))
    .unwrap();
    // "two" normalises to "2": right; question 11 has no prediction: wrong.
    assert_eq!(v["accuracy"], 50.0);
    assert_eq!(v["missing_predictions"], 1);

    // RefCOCO against synthetic refcoco shards: exact boxes for half, nothing for the rest.
    let tasks = d.join("tasks");
    palisade_ok(
        d,
        &[
            "data",
            "synth",
            "tasks",
            "--out",
            tasks.to_str().unwrap(),
            "--rows",
            "10",
            "--image-size",
            "32",
        ],
    );
    let json = palisade_ok(
        d,
        &[
            "data",
            "inspect",
            &format!("{}/refcoco/*.parquet", tasks.display()),
            "--json",
            "--samples",
            "4",
        ],
    );
    let inspect: serde_json::Value = serde_json::from_str(&json).unwrap();
    let samples = inspect["samples"].as_array().unwrap();
    let boxes: Vec<serde_json::Value> = samples
        .iter()
        .map(|s| {
            let b: Vec<f64> = serde_json::from_str(s["box"].as_str().unwrap()).unwrap();
            json!({"sent_id": s["sent_id"], "box": b})
        })
        .collect();
    write(&p, serde_json::Value::Array(boxes));
    let v: serde_json::Value = serde_json::from_str(&palisade_ok(
        d,
        &[
            "score",
            "refcoco",
            "--predictions",
            p.to_str().unwrap(),
            "--references",
            &format!("{}/refcoco/*.parquet", tasks.display()),
        ],
    ))
    .unwrap();
    let n = v["expressions"].as_f64().unwrap();
    assert!(
        (v["overall"]["acc_50"].as_f64().unwrap() - 4.0 / n).abs() < 1e-9,
        "{v}"
    );
    assert_eq!(v["missing_predictions"].as_f64().unwrap(), n - 4.0);
}
