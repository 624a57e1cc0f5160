//! Shards palisade writes (synthetic shapes and every converter's output) read by pyarrow and
//! by Hugging Face `datasets`: schema, row groups, compression and every value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use palisade_data::convert::{
    convert_coco_captions, convert_jsonl, convert_refcoco, convert_vqa, convert_webdataset,
    CocoCaptionsSource, ConvertConfig, ExpressionField, JsonlSource, RefcocoSource, VqaSource,
    WebdatasetSource,
};
use palisade_data::{write_shapes, ShapesConfig, ShardInfo};
use serde_json::{json, Map, Value};

use crate::common::{binaries, bytes_tag, i32s, oracle, read_all, strings};
use crate::fixtures;

/// One dataset palisade wrote and what readers must see in it.
struct Case {
    shards: Vec<PathBuf>,
    /// Column types as pyarrow prints them.
    pyarrow_types: Vec<(&'static str, &'static str)>,
    /// Column types as `datasets` features name them.
    datasets_types: Vec<(&'static str, &'static str)>,
    /// Expected rows, or only some columns of them (shapes).
    rows: Vec<Value>,
    converted: bool,
}

fn cfg(dir: &Path, prefix: &str) -> ConvertConfig {
    ConvertConfig {
        rows_per_group: 2,
        ..ConvertConfig::new(dir.join(prefix), prefix)
    }
}

fn caption_case(dir: &Path) -> Case {
    let f = fixtures::coco(&dir.join("coco"));
    let src = CocoCaptionsSource {
        annotations: f.annotations.clone(),
        images: f.images.clone(),
        lang: "en".into(),
    };
    let s = convert_coco_captions(&src, &cfg(dir, "caption")).unwrap();
    let rows = f
        .expected
        .iter()
        .map(|(id, bytes, caps)| {
            json!({"image": bytes_tag(bytes), "captions": caps, "lang": "en",
                   "image_id": id.to_string(), "id": id.to_string()})
        })
        .collect();
    Case {
        shards: s.shards,
        pyarrow_types: vec![
            ("image", "binary"),
            ("captions", "list<string>"),
            ("lang", "string"),
            ("image_id", "string"),
            ("id", "string"),
        ],
        datasets_types: vec![
            ("image", "binary"),
            ("captions", "list<string>"),
            ("lang", "string"),
            ("image_id", "string"),
            ("id", "string"),
        ],
        rows,
        converted: true,
    }
}

fn vqa_case(dir: &Path) -> Case {
    let f = fixtures::vqa(&dir.join("vqa-src"));
    let src = VqaSource {
        questions: f.questions.clone(),
        annotations: Some(f.annotations.clone()),
        images: f.images.clone(),
        subtype: None,
        lang: "en".into(),
    };
    let s = convert_vqa(&src, &cfg(dir, "vqa")).unwrap();
    let questions: Value = serde_json::from_slice(&std::fs::read(&f.questions).unwrap()).unwrap();
    let anns: Value = serde_json::from_slice(&std::fs::read(&f.annotations).unwrap()).unwrap();
    let rows = questions["questions"]
        .as_array()
        .unwrap()
        .iter()
        .zip(anns["annotations"].as_array().unwrap())
        .map(|(q, a)| {
            let image_id = q["image_id"].as_u64().unwrap();
            let bytes = &f
                .image_bytes
                .iter()
                .find(|(id, _)| *id == image_id)
                .unwrap()
                .1;
            let qid = q["question_id"].as_u64().unwrap();
            json!({
                "image": bytes_tag(bytes), "question": q["question"],
                "answers": fixtures::vqa_answers(qid), "question_id": qid.to_string(),
                "question_type": a["question_type"], "answer_type": a["answer_type"],
                "image_id": image_id.to_string(), "lang": "en",
                "multiple_choice_answer": a["multiple_choice_answer"],
            })
        })
        .collect();
    let types = vec![
        ("image", "binary"),
        ("question", "string"),
        ("answers", "list<string>"),
        ("question_id", "string"),
        ("question_type", "string"),
        ("answer_type", "string"),
        ("image_id", "string"),
        ("lang", "string"),
        ("multiple_choice_answer", "string"),
    ];
    Case {
        shards: s.shards,
        pyarrow_types: types.clone(),
        datasets_types: types,
        rows,
        converted: true,
    }
}

fn refcoco_case(dir: &Path) -> Case {
    let src_dir = dir.join("refcoco-src");
    let f = fixtures::refcoco(&src_dir);
    let refs = crate::refcoco::rust_pickle(&src_dir, &f.refs);
    let src = RefcocoSource {
        refs,
        instances: f.instances.clone(),
        images: f.images.clone(),
        split: None,
        expression: ExpressionField::Sent,
        lang: "en".into(),
    };
    let s = convert_refcoco(&src, &cfg(dir, "refcoco")).unwrap();
    let instances: Value = serde_json::from_slice(&std::fs::read(&f.instances).unwrap()).unwrap();
    let mut rows = Vec::new();
    for r in f.refs.as_array().unwrap() {
        let ann = instances["annotations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == r["ann_id"])
            .unwrap();
        let img = instances["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == r["image_id"])
            .unwrap();
        let image_id = r["image_id"].as_u64().unwrap();
        let bytes = &f
            .image_bytes
            .iter()
            .find(|(id, _)| *id == image_id)
            .unwrap()
            .1;
        for sent in r["sentences"].as_array().unwrap() {
            rows.push(json!({
                "image": bytes_tag(bytes), "expression": sent["sent"], "box": ann["bbox"],
                "width": img["width"], "height": img["height"],
                "ref_id": r["ref_id"].to_string(), "sent_id": sent["sent_id"].to_string(),
                "split": r["split"], "image_id": image_id.to_string(), "lang": "en",
            }));
        }
    }
    let t = |box_type| {
        vec![
            ("image", "binary"),
            ("expression", "string"),
            ("box", box_type),
            ("width", "int32"),
            ("height", "int32"),
            ("ref_id", "string"),
            ("sent_id", "string"),
            ("split", "string"),
            ("image_id", "string"),
            ("lang", "string"),
        ]
    };
    Case {
        shards: s.shards,
        pyarrow_types: t("list<double>"),
        datasets_types: t("list<float64>"),
        rows,
        converted: true,
    }
}

const WEBLI_TYPES: [(&str, &str); 4] = [
    ("image", "binary"),
    ("text", "string"),
    ("lang", "string"),
    ("id", "string"),
];

fn webdataset_case(dir: &Path) -> Case {
    let src_dir = dir.join("wds-src");
    std::fs::create_dir_all(&src_dir).unwrap();
    let (tars, imgs) = crate::webli_sources::tars(&src_dir);
    let s = convert_webdataset(
        &WebdatasetSource {
            tars,
            lang: "en".into(),
        },
        &cfg(dir, "wds"),
    )
    .unwrap();
    let meta = [
        ("s/000001", "a red square", "en"),
        ("s/000002", "zwei Kreise", "de"),
        ("s/000003", "from the json", "fr"),
        ("000004", "last one", "en"),
    ];
    let rows = meta
        .iter()
        .zip(&imgs)
        .map(|((id, text, lang), b)| {
            json!({"image": bytes_tag(b), "text": text, "lang": lang, "id": id})
        })
        .collect();
    Case {
        shards: s.shards,
        pyarrow_types: WEBLI_TYPES.to_vec(),
        datasets_types: WEBLI_TYPES.to_vec(),
        rows,
        converted: true,
    }
}

fn jsonl_case(dir: &Path) -> Case {
    let m = fixtures::manifest(&dir.join("jsonl-src"), 5);
    let src = JsonlSource {
        manifest: m.path.clone(),
        images: Some(m.images.clone()),
        lang: "en".into(),
    };
    let s = convert_jsonl(&src, &cfg(dir, "jsonl")).unwrap();
    let rows = m
        .expected
        .iter()
        .map(|(id, text, lang, b)| {
            json!({"image": bytes_tag(b), "text": text, "lang": lang, "id": id})
        })
        .collect();
    Case {
        shards: s.shards,
        pyarrow_types: WEBLI_TYPES.to_vec(),
        datasets_types: WEBLI_TYPES.to_vec(),
        rows,
        converted: true,
    }
}

fn shapes_case(dir: &Path) -> Case {
    let shapes = ShapesConfig {
        rows: 7,
        image_size: 12,
        rows_per_shard: 4,
        rows_per_group: 3,
        seed: 5,
        ..ShapesConfig::default()
    };
    let shards = write_shapes(&dir.join("shapes"), &shapes).unwrap().shards;
    // What palisade itself reads back; the Python side must agree on these columns.
    let b = read_all(&shards);
    let (ids, texts, imgs, widths) = (
        strings(&b, "id"),
        strings(&b, "text"),
        binaries(&b, "image"),
        i32s(&b, "width"),
    );
    let rows = (0..b.num_rows())
        .map(|i| {
            json!({"id": ids[i], "text": texts[i], "image": bytes_tag(&imgs[i]),
                   "width": widths[i], "lang": "en"})
        })
        .collect();
    Case {
        shards,
        pyarrow_types: vec![
            ("id", "string"),
            ("image", "binary"),
            ("text", "string"),
            ("lang", "string"),
            ("width", "int32"),
            ("height", "int32"),
            ("primary_shape", "string"),
            ("primary_color", "string"),
            (
                "objects",
                "list<struct<shape: string, color: string, size: string, position: string, \
                 x: float, y: float, w: float, h: float>>",
            ),
        ],
        datasets_types: vec![
            ("id", "string"),
            ("image", "binary"),
            ("text", "string"),
            ("lang", "string"),
            ("width", "int32"),
            ("height", "int32"),
            ("primary_shape", "string"),
            ("primary_color", "string"),
            (
                "objects",
                "list<struct<shape: string, color: string, size: string, position: string, \
                 x: float32, y: float32, w: float32, h: float32>>",
            ),
        ],
        rows,
        converted: false,
    }
}

/// Rounds floats so values parsed from Python's JSON compare with Rust's exactly.
fn rounded(v: &Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => json!((n.as_f64().unwrap() * 1e6).round() / 1e6),
        Value::Array(a) => Value::Array(a.iter().map(rounded).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), rounded(x))).collect()),
        other => other.clone(),
    }
}

/// Only the keys of `want` from `row`.
fn project(row: &Value, want: &Value) -> Value {
    let keys: Map<String, Value> = want
        .as_object()
        .unwrap()
        .keys()
        .map(|k| (k.clone(), row[k].clone()))
        .collect();
    Value::Object(keys)
}

fn types(v: &Value) -> Vec<(String, String)> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, t)| (k.clone(), t.as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn palisade_shards_read_in_pyarrow_and_datasets() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let cases: BTreeMap<&str, Case> = [
        ("caption", caption_case(root)),
        ("vqa", vqa_case(root)),
        ("refcoco", refcoco_case(root)),
        ("webdataset", webdataset_case(root)),
        ("jsonl", jsonl_case(root)),
        ("shapes", shapes_case(root)),
    ]
    .into_iter()
    .collect();
    let request = json!({
        "cache_dir": root.join("hf-cache"),
        "datasets": cases.iter().map(|(k, c)| (k.to_string(), json!(c.shards))).collect::<Map<_, _>>(),
    });
    let request_path = root.join("request.json");
    std::fs::write(&request_path, request.to_string()).unwrap();
    let out: Value =
        serde_json::from_str(&oracle("read_parquet.py", &[&request_path], root)).unwrap();

    for (name, case) in &cases {
        let seen = &out[*name];
        let pa = &seen["pyarrow"];
        let ds = &seen["datasets"];
        let sorted = |t: &[(&str, &str)]| -> Vec<(String, String)> {
            let mut v: Vec<_> = t
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            v.sort();
            v
        };
        let mut pa_types = types(&pa["schema"]);
        pa_types.sort();
        assert_eq!(
            pa_types,
            sorted(&case.pyarrow_types),
            "{name}: pyarrow schema"
        );
        let mut ds_types = types(&ds["schema"]);
        ds_types.sort();
        assert_eq!(
            ds_types,
            sorted(&case.datasets_types),
            "{name}: datasets features"
        );

        let n = case.rows.len();
        assert_eq!(pa["num_rows"], json!(n), "{name}");
        assert_eq!(ds["num_rows"], json!(n), "{name}");
        let groups: Vec<Vec<usize>> = case
            .shards
            .iter()
            .map(|p| ShardInfo::open(p).unwrap().row_groups().to_vec())
            .collect();
        assert_eq!(pa["row_groups"], json!(groups), "{name}: row groups");
        if case.converted {
            assert_eq!(pa["compression"], json!(["ZSTD"]), "{name}");
        }

        let pa_rows = pa["rows"].as_array().unwrap();
        let ds_rows = ds["rows"].as_array().unwrap();
        // The two Python readers agree on every column, nested ones included.
        assert_eq!(
            rounded(&pa["rows"]),
            rounded(&ds["rows"]),
            "{name}: pyarrow vs datasets"
        );
        for (i, want) in case.rows.iter().enumerate() {
            assert_eq!(
                rounded(&project(&pa_rows[i], want)),
                rounded(want),
                "{name} row {i} in pyarrow"
            );
            assert_eq!(
                rounded(&project(&ds_rows[i], want)),
                rounded(want),
                "{name} row {i} in datasets"
            );
        }
    }
}
