//! Small sources in the official formats: COCO captions, VQAv2, RefCOCO instances and refs,
//! webdataset tars and JSON-lines manifests, with real JPEG/PNG/WebP images.

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use serde_json::{json, Value};

/// A small image whose pixels depend on `seed`.
fn picture(seed: u8, w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([
            seed.wrapping_mul(37).wrapping_add(x as u8 * 20),
            (y as u8).wrapping_mul(30),
            seed,
        ])
    })
}

/// PNG bytes of a `w`×`h` picture.
pub fn png(seed: u8, w: u32, h: u32) -> Vec<u8> {
    palisade_data::image_ops::encode_png(&picture(seed, w, h)).unwrap()
}

/// JPEG bytes of a `w`×`h` picture.
pub fn jpeg(seed: u8, w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&picture(seed, w, h))
        .unwrap();
    out
}

/// Lossless WebP bytes of a `w`×`h` picture.
pub fn webp(seed: u8, w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut out)
        .encode(
            picture(seed, w, h).as_raw(),
            w,
            h,
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    out
}

fn write_json(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_vec(v).unwrap()).unwrap();
}

/// `COCO_{subtype}_{id:012}.jpg`, the COCO 2014 file name.
pub fn coco_name(subtype: &str, id: u64) -> String {
    format!("COCO_{subtype}_{id:012}.jpg")
}

/// Writes `bytes` under `dir/name` and returns them.
fn image_file(dir: &Path, name: &str, bytes: Vec<u8>) -> Vec<u8> {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), &bytes).unwrap();
    bytes
}

/// A COCO captions source.
pub struct Coco {
    pub annotations: PathBuf,
    pub images: PathBuf,
    /// (image id, its file's bytes, its captions in file order), in `images` order.
    pub expected: Vec<(u64, Vec<u8>, Vec<&'static str>)>,
}

/// `captions_val2014.json` with three images (JPEG and PNG bytes under COCO's `.jpg` names:
/// converters keep bytes as they are) and interleaved annotations.
pub fn coco(dir: &Path) -> Coco {
    let images = dir.join("val2014");
    let ids = [42u64, 73, 99];
    let bytes = [jpeg(1, 8, 6), png(2, 5, 7), png(3, 4, 4)];
    let captions: [Vec<&'static str>; 3] = [
        vec!["A cat sits on a mat.", "A grey cat, resting."],
        vec![
            "Two dogs.",
            "Dogs \"playing\" outside.",
            "Ünïcödé caption ✓",
        ],
        vec!["An empty room"],
    ];
    let mut image_entries = Vec::new();
    let mut expected = Vec::new();
    for (k, id) in ids.iter().enumerate() {
        let name = coco_name("val2014", *id);
        let b = image_file(&images, &name, bytes[k].clone());
        image_entries.push(json!({
            "license": 3, "file_name": name, "coco_url": format!("http://x/{name}"),
            "height": 6, "width": 8, "date_captured": "2013-11-14 16:28:13",
            "flickr_url": "http://x", "id": id,
        }));
        expected.push((*id, b, captions[k].clone()));
    }
    // Annotations interleave images, as in the official file.
    let order = [(1, 0), (0, 0), (1, 1), (2, 0), (0, 1), (1, 2)];
    let annotations: Vec<Value> = order
        .iter()
        .enumerate()
        .map(|(n, &(img, cap))| {
            json!({"image_id": ids[img], "id": 1000 + n, "caption": captions[img][cap]})
        })
        .collect();
    let path = dir.join("captions_val2014.json");
    write_json(
        &path,
        &json!({
            "info": {"description": "COCO 2014 Dataset", "year": 2014},
            "licenses": [{"url": "http://x", "id": 3, "name": "CC"}],
            "images": image_entries,
            "annotations": annotations,
        }),
    );
    Coco {
        annotations: path,
        images,
        expected,
    }
}

/// A VQAv2 source.
pub struct Vqa {
    pub questions: PathBuf,
    pub annotations: PathBuf,
    pub images: PathBuf,
    /// Image bytes by image id.
    pub image_bytes: Vec<(u64, Vec<u8>)>,
}

/// The ten answers of question `qid`.
pub fn vqa_answers(qid: u64) -> Vec<String> {
    (0..10)
        .map(|k| match (qid % 3, k) {
            (0, k) if k < 7 => "yes".to_string(),
            (0, _) => "no".to_string(),
            (_, k) => format!("{} {}", qid % 7, if k % 2 == 0 { "cats" } else { "cat" }),
        })
        .collect()
}

/// Questions and annotations for two val2014 images, two questions each.
pub fn vqa(dir: &Path) -> Vqa {
    let images = dir.join("val2014");
    let mut image_bytes = Vec::new();
    for (k, id) in [262148u64, 393225].into_iter().enumerate() {
        let b = image_file(&images, &coco_name("val2014", id), jpeg(10 + k as u8, 6, 6));
        image_bytes.push((id, b));
    }
    let qs = [
        (
            262148u64,
            262148000u64,
            "Is the cat asleep?",
            "is the",
            "yes/no",
        ),
        (
            262148,
            262148001,
            "How many cats are there?",
            "how many",
            "number",
        ),
        (393225, 393225000, "Is it raining?", "is it", "yes/no"),
        (
            393225,
            393225002,
            "What colour is the bus?",
            "what color is the",
            "other",
        ),
    ];
    let questions: Vec<Value> = qs
        .iter()
        .map(|(img, qid, q, _, _)| json!({"image_id": img, "question": q, "question_id": qid}))
        .collect();
    let annotations: Vec<Value> = qs
        .iter()
        .map(|(img, qid, _, qt, at)| {
            let answers: Vec<Value> = vqa_answers(*qid)
                .iter()
                .enumerate()
                .map(|(k, a)| json!({"answer": a, "answer_confidence": "yes", "answer_id": k + 1}))
                .collect();
            json!({
                "question_type": qt, "multiple_choice_answer": vqa_answers(*qid)[0],
                "answers": answers, "image_id": img, "answer_type": at, "question_id": qid,
            })
        })
        .collect();
    let questions_path = dir.join("v2_OpenEnded_mscoco_val2014_questions.json");
    write_json(
        &questions_path,
        &json!({
            "info": {}, "task_type": "Open-Ended", "data_type": "mscoco",
            "license": {}, "data_subtype": "val2014", "questions": questions,
        }),
    );
    let annotations_path = dir.join("v2_mscoco_val2014_annotations.json");
    write_json(
        &annotations_path,
        &json!({
            "info": {}, "license": {}, "data_subtype": "val2014", "annotations": annotations,
        }),
    );
    Vqa {
        questions: questions_path,
        annotations: annotations_path,
        images,
        image_bytes,
    }
}

/// A RefCOCO source; the refs pickle is written separately (by Python or serde-pickle).
pub struct Refcoco {
    pub instances: PathBuf,
    pub images: PathBuf,
    /// The refs in the official structure, as JSON.
    pub refs: Value,
    /// Image bytes by image id.
    pub image_bytes: Vec<(u64, Vec<u8>)>,
}

/// `instances.json` with two train2014 images and three objects, and four refs over them
/// in three splits (one with a Latin-1 `raw` sentence, as some official ones have).
pub fn refcoco(dir: &Path) -> Refcoco {
    let images = dir.join("train2014");
    let imgs = [(581857u64, 640u32, 427u32), (131074, 480, 640)];
    let mut image_entries = Vec::new();
    let mut image_bytes = Vec::new();
    for (k, (id, w, h)) in imgs.iter().enumerate() {
        let name = coco_name("train2014", *id);
        let b = image_file(&images, &name, jpeg(20 + k as u8, 8, 8));
        image_bytes.push((*id, b));
        image_entries.push(json!({"file_name": name, "height": h, "width": w, "id": id}));
    }
    let anns = [
        (1719310u64, 581857u64, [103.93, 299.99, 134.22, 177.42]),
        (1720000, 581857, [0.0, 10.5, 50.0, 60.25]),
        (2000001, 131074, [12.0, 34.0, 56.0, 78.0]),
    ];
    let annotations: Vec<Value> = anns
        .iter()
        .map(|(id, img, b)| {
            json!({
                "segmentation": [[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]], "area": 100.0,
                "iscrowd": 0, "image_id": img, "bbox": b, "category_id": 1, "id": id,
            })
        })
        .collect();
    let instances = dir.join("instances.json");
    write_json(
        &instances,
        &json!({
            "info": {}, "licenses": [], "images": image_entries,
            "annotations": annotations, "categories": [{"supercategory": "person", "id": 1, "name": "person"}],
        }),
    );
    let sentence = |id: u64, raw: &str| {
        let sent = raw.to_lowercase().replace(['.', ','], "");
        let tokens: Vec<&str> = sent.split(' ').collect();
        json!({"tokens": tokens, "raw": raw, "sent_id": id, "sent": sent})
    };
    let rf = |ref_id: u64, ann: u64, img: u64, split: &str, sents: Vec<Value>| {
        let ids: Vec<Value> = sents.iter().map(|s| s["sent_id"].clone()).collect();
        json!({
            "sent_ids": ids, "file_name": format!("COCO_train2014_{img:012}_{ann}.jpg"),
            "ann_id": ann, "ref_id": ref_id, "image_id": img, "split": split,
            "sentences": sents, "category_id": 1,
        })
    };
    let refs = json!([
        rf(
            0,
            1719310,
            581857,
            "train",
            vec![
                sentence(0, "The lady with the blue shirt"),
                sentence(1, "lady w/ blue shirt")
            ]
        ),
        rf(
            1,
            1720000,
            581857,
            "val",
            vec![sentence(2, "Man at the café, left")]
        ),
        rf(
            2,
            2000001,
            131074,
            "testA",
            vec![sentence(3, "Woman in red"), sentence(4, "red woman")]
        ),
        rf(3, 1719310, 581857, "train", vec![sentence(5, "Blue Shirt")]),
    ]);
    Refcoco {
        instances,
        images,
        refs,
        image_bytes,
    }
}

/// A tar member.
pub struct Member<'a> {
    pub name: &'a str,
    pub bytes: Vec<u8>,
}

/// Writes an uncompressed tar of `members`, in order.
pub fn tar(path: &Path, members: Vec<Member<'_>>) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for m in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(m.bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        b.append_data(&mut header, m.name, m.bytes.as_slice())
            .unwrap();
    }
    b.into_inner().unwrap();
}

/// A member from a name and bytes.
pub fn member(name: &str, bytes: impl Into<Vec<u8>>) -> Member<'_> {
    Member {
        name,
        bytes: bytes.into(),
    }
}

/// A JSON-lines manifest over an image folder.
pub struct Manifest {
    pub path: PathBuf,
    pub images: PathBuf,
    /// (id, text, lang, bytes) of each row, in order.
    pub expected: Vec<(String, String, String, Vec<u8>)>,
}

/// `n` lines (some naming `lang` or `id`, one blank line) over images in nested folders.
pub fn manifest(dir: &Path, n: usize) -> Manifest {
    let images = dir.join("imgs");
    let mut lines = Vec::new();
    let mut expected = Vec::new();
    for i in 0..n {
        let rel = format!(
            "part{}/img-{i}.{}",
            i % 2,
            if i % 3 == 0 { "webp" } else { "png" }
        );
        let bytes = if i % 3 == 0 {
            webp(i as u8, 6, 5)
        } else {
            png(i as u8, 5, 6)
        };
        std::fs::create_dir_all(images.join(format!("part{}", i % 2))).unwrap();
        std::fs::write(images.join(&rel), &bytes).unwrap();
        let text = format!("caption number {i}");
        let (line, id, lang) = match i % 3 {
            0 => (json!({"image": rel, "text": text}), rel.clone(), "en"),
            1 => (
                json!({"image": rel, "text": text, "lang": "de"}),
                rel.clone(),
                "de",
            ),
            _ => (
                json!({"image": rel, "text": text, "lang": "fr", "id": format!("row-{i}"), "extra": 1}),
                format!("row-{i}"),
                "fr",
            ),
        };
        lines.push(line.to_string());
        if i == 1 {
            lines.push("   ".to_string());
        }
        expected.push((id, text, lang.to_string(), bytes));
    }
    let path = dir.join("manifest.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    Manifest {
        path,
        images,
        expected,
    }
}
