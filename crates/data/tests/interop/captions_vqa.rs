//! COCO captions and VQAv2 converters: rows, values, layout, and errors naming file and entry.

use std::path::Path;

use palisade_data::convert::{
    convert_coco_captions, convert_vqa, CocoCaptionsSource, ConvertConfig, VqaSource,
};

use crate::common::{assert_layout, binaries, read_all, string_lists, strings};
use crate::fixtures;

fn cfg(dir: &Path, prefix: &str) -> ConvertConfig {
    ConvertConfig {
        rows_per_group: 2,
        ..ConvertConfig::new(dir.join("out"), prefix)
    }
}

fn coco_source(f: &fixtures::Coco) -> CocoCaptionsSource {
    CocoCaptionsSource {
        annotations: f.annotations.clone(),
        images: f.images.clone(),
        lang: "en".into(),
    }
}

#[test]
fn coco_captions_one_row_per_image_with_all_captions() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixtures::coco(dir.path());
    let summary = convert_coco_captions(&coco_source(&f), &cfg(dir.path(), "caption")).unwrap();
    assert_eq!((summary.rows, summary.skipped), (3, 0));
    assert_layout("caption", &summary.shards);
    let b = read_all(&summary.shards);
    let ids: Vec<String> = f.expected.iter().map(|e| e.0.to_string()).collect();
    assert_eq!(strings(&b, "image_id"), ids);
    assert_eq!(strings(&b, "id"), ids);
    assert_eq!(strings(&b, "lang"), ["en"; 3]);
    let want: Vec<Vec<String>> = f
        .expected
        .iter()
        .map(|e| e.2.iter().map(|c| c.to_string()).collect())
        .collect();
    assert_eq!(string_lists(&b, "captions"), want);
    let images: Vec<Vec<u8>> = f.expected.iter().map(|e| e.1.clone()).collect();
    assert_eq!(
        binaries(&b, "image"),
        images,
        "image bytes must be kept as they are"
    );
}

#[test]
fn coco_missing_image_is_named_or_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixtures::coco(dir.path());
    let missing = fixtures::coco_name("val2014", 73);
    std::fs::remove_file(f.images.join(&missing)).unwrap();
    let err = convert_coco_captions(&coco_source(&f), &cfg(dir.path(), "caption"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("captions_val2014.json"), "{err}");
    assert!(err.contains("images[1] (id 73)"), "{err}");
    assert!(err.contains(&missing), "{err}");
    assert!(
        !dir.path().join("out").read_dir().unwrap().any(|_| true),
        "a failed conversion leaves no files"
    );

    let mut skipping = cfg(dir.path(), "caption");
    skipping.skip_missing = true;
    let summary = convert_coco_captions(&coco_source(&f), &skipping).unwrap();
    assert_eq!((summary.rows, summary.skipped), (2, 1));
    assert!(
        summary.skipped_examples[0].contains("id 73"),
        "{:?}",
        summary.skipped_examples
    );
    assert_eq!(
        strings(&read_all(&summary.shards), "image_id"),
        ["42", "99"]
    );
}

#[test]
fn coco_malformed_annotation_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixtures::coco(dir.path());
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&f.annotations).unwrap()).unwrap();
    v["annotations"][4]["image_id"] = 5.into();
    v["annotations"][2]["caption"] = serde_json::Value::Null;
    std::fs::write(&f.annotations, v.to_string()).unwrap();
    let err = convert_coco_captions(&coco_source(&f), &cfg(dir.path(), "caption"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("captions_val2014.json: annotations[2]"),
        "{err}"
    );
    assert!(err.contains("null"), "{err}");

    let mut skipping = cfg(dir.path(), "caption");
    skipping.skip_missing = true;
    let summary = convert_coco_captions(&coco_source(&f), &skipping).unwrap();
    assert_eq!((summary.rows, summary.skipped), (3, 2));
    assert!(
        summary.skipped_examples[1].contains("image_id 5 is not among the images"),
        "{:?}",
        summary.skipped_examples
    );
    let b = read_all(&summary.shards);
    assert_eq!(string_lists(&b, "captions")[0], ["A cat sits on a mat."]);
}

fn vqa_source(f: &fixtures::Vqa) -> VqaSource {
    VqaSource {
        questions: f.questions.clone(),
        annotations: Some(f.annotations.clone()),
        images: f.images.clone(),
        subtype: None,
        lang: "en".into(),
    }
}

#[test]
fn vqa_one_row_per_question_with_ten_answers() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixtures::vqa(dir.path());
    let summary = convert_vqa(&vqa_source(&f), &cfg(dir.path(), "vqa")).unwrap();
    assert_eq!(summary.rows, 4);
    assert_layout("vqa", &summary.shards);
    let b = read_all(&summary.shards);
    let qids = ["262148000", "262148001", "393225000", "393225002"];
    assert_eq!(strings(&b, "question_id"), qids);
    assert_eq!(
        strings(&b, "image_id"),
        ["262148", "262148", "393225", "393225"]
    );
    assert_eq!(strings(&b, "question")[1], "How many cats are there?");
    assert_eq!(strings(&b, "question_type")[3], "what color is the");
    assert_eq!(
        strings(&b, "answer_type"),
        ["yes/no", "number", "yes/no", "other"]
    );
    let answers = string_lists(&b, "answers");
    for (i, qid) in qids.iter().enumerate() {
        let want = fixtures::vqa_answers(qid.parse().unwrap());
        assert_eq!(answers[i], want);
        assert_eq!(strings(&b, "multiple_choice_answer")[i], want[0]);
    }
    assert_eq!(binaries(&b, "image")[2], f.image_bytes[1].1);
    assert_eq!(binaries(&b, "image")[0], f.image_bytes[0].1);
}

#[test]
fn vqa_without_annotations_keeps_questions_and_subtype_can_be_given() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixtures::vqa(dir.path());
    let test_images = dir.path().join("test2015");
    std::fs::create_dir_all(&test_images).unwrap();
    for (id, bytes) in &f.image_bytes {
        std::fs::write(
            test_images.join(fixtures::coco_name("test2015", *id)),
            bytes,
        )
        .unwrap();
    }
    let src = VqaSource {
        annotations: None,
        images: test_images,
        subtype: Some("test2015".into()),
        lang: "en".into(),
        ..vqa_source(&f)
    };
    let summary = convert_vqa(&src, &cfg(dir.path(), "vqa")).unwrap();
    assert_eq!(summary.rows, 4);
    assert_layout("vqa", &summary.shards);
    let b = read_all(&summary.shards);
    assert!(string_lists(&b, "answers").iter().all(Vec::is_empty));
    assert_eq!(strings(&b, "answer_type"), ["", "", "", ""]);
}

#[test]
fn vqa_inconsistent_annotation_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixtures::vqa(dir.path());
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&f.annotations).unwrap()).unwrap();
    v["annotations"][2]["image_id"] = 7.into();
    std::fs::write(&f.annotations, v.to_string()).unwrap();
    let err = convert_vqa(&vqa_source(&f), &cfg(dir.path(), "vqa"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "v2_OpenEnded_mscoco_val2014_questions.json: questions[2] (question_id 393225000)"
        ),
        "{err}"
    );
    assert!(err.contains("annotation says 7"), "{err}");
}
