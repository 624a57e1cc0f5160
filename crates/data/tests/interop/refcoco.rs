//! RefCOCO converter: refs pickles written by real Python (Python 2 style and Python 3), one row
//! per sentence with its box, splits kept or filtered, and malformed refs named.

use std::path::{Path, PathBuf};

use palisade_data::convert::{convert_refcoco, ConvertConfig, ExpressionField, RefcocoSource};
use palisade_data::DataError;

use crate::common::{assert_layout, binaries, f64_lists, i32s, oracle, read_all, strings};
use crate::fixtures;

fn source(f: &fixtures::Refcoco, refs: &Path) -> RefcocoSource {
    RefcocoSource {
        refs: refs.to_path_buf(),
        instances: f.instances.clone(),
        images: f.images.clone(),
        split: None,
        expression: ExpressionField::Sent,
        lang: "en".into(),
    }
}

fn cfg(out: &Path) -> ConvertConfig {
    ConvertConfig {
        rows_per_group: 2,
        ..ConvertConfig::new(out, "refcoco")
    }
}

/// Writes the refs with serde-pickle (for error cases; real Python pickles are tested below).
pub fn rust_pickle(dir: &Path, refs: &serde_json::Value) -> PathBuf {
    let path = dir.join("refs(unc).p");
    let bytes = serde_pickle::to_vec(refs, serde_pickle::SerOptions::new()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn python_pickles_convert_to_one_row_per_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixtures::refcoco(dir.path());
    let refs_json = dir.path().join("refs.json");
    std::fs::write(&refs_json, f.refs.to_string()).unwrap();
    let pickles = dir.path().join("pickles");
    let out = oracle(
        "write_refcoco_pickles.py",
        &[&refs_json, &pickles],
        dir.path(),
    );
    let names: Vec<String> = serde_json::from_str(&out).unwrap();
    assert_eq!(names, ["refs_p2.p", "refs_p5.p", "refs_py2.p"]);

    let mut first = None;
    for name in &names {
        let summary = convert_refcoco(
            &source(&f, &pickles.join(name)),
            &cfg(&dir.path().join(format!("out-{name}"))),
        )
        .unwrap();
        assert_eq!((summary.rows, summary.skipped), (6, 0), "{name}");
        assert_layout("refcoco", &summary.shards);
        let b = read_all(&summary.shards);
        assert_eq!(
            strings(&b, "ref_id"),
            ["0", "0", "1", "2", "2", "3"],
            "{name}"
        );
        assert_eq!(
            strings(&b, "sent_id"),
            ["0", "1", "2", "3", "4", "5"],
            "{name}"
        );
        assert_eq!(
            strings(&b, "split"),
            ["train", "train", "val", "testA", "testA", "train"]
        );
        assert_eq!(
            strings(&b, "expression")[2],
            "man at the café left",
            "{name}"
        );
        assert_eq!(f64_lists(&b, "box")[0], [103.93, 299.99, 134.22, 177.42]);
        assert_eq!(f64_lists(&b, "box")[3], [12.0, 34.0, 56.0, 78.0]);
        assert_eq!(i32s(&b, "width"), [640, 640, 640, 480, 480, 640]);
        assert_eq!(i32s(&b, "height"), [427, 427, 427, 640, 640, 427]);
        assert_eq!(strings(&b, "image_id")[3], "131074");
        assert_eq!(binaries(&b, "image")[3], f.image_bytes[1].1);
        assert_eq!(binaries(&b, "image")[0], f.image_bytes[0].1);
        // Every pickle flavour, Python 2 byte strings included, gives the same rows.
        let rows = (
            strings(&b, "expression"),
            f64_lists(&b, "box"),
            binaries(&b, "image"),
        );
        match &first {
            None => first = Some(rows),
            Some(want) => assert_eq!(&rows, want, "{name} differs from {}", names[0]),
        }
    }
}

#[test]
fn split_filter_and_raw_expressions() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixtures::refcoco(dir.path());
    let refs = rust_pickle(dir.path(), &f.refs);
    let src = RefcocoSource {
        split: Some("val".into()),
        expression: ExpressionField::Raw,
        ..source(&f, &refs)
    };
    let summary = convert_refcoco(&src, &cfg(&dir.path().join("val"))).unwrap();
    assert_eq!(summary.rows, 1);
    let b = read_all(&summary.shards);
    assert_eq!(strings(&b, "expression"), ["Man at the café, left"]);
    assert_eq!(strings(&b, "split"), ["val"]);
    assert_eq!(f64_lists(&b, "box"), [[0.0, 10.5, 50.0, 60.25]]);

    let src = RefcocoSource {
        split: Some("testB".into()),
        ..source(&f, &refs)
    };
    let err = convert_refcoco(&src, &cfg(&dir.path().join("testB"))).unwrap_err();
    assert!(matches!(err, DataError::NoRows { .. }), "{err}");
    let err = err.to_string();
    assert!(
        err.contains("refs(unc).p") && err.contains("\"testB\""),
        "{err}"
    );
    assert!(err.contains("testA, train, val"), "{err}");
}

#[test]
fn malformed_refs_are_named_or_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixtures::refcoco(dir.path());
    let mut refs = f.refs.clone();
    refs[1]["ann_id"] = 999.into();
    refs[2]["sentences"][1]
        .as_object_mut()
        .unwrap()
        .remove("sent");
    let pickle = rust_pickle(dir.path(), &refs);
    let err = convert_refcoco(&source(&f, &pickle), &cfg(&dir.path().join("a")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("refs(unc).p: refs[1] (ref_id 1)"), "{err}");
    assert!(err.contains("ann_id 999"), "{err}");

    let skipping = ConvertConfig {
        skip_missing: true,
        ..cfg(&dir.path().join("b"))
    };
    let summary = convert_refcoco(&source(&f, &pickle), &skipping).unwrap();
    assert_eq!((summary.rows, summary.skipped), (3, 2));
    let examples = &summary.skipped_examples;
    assert!(examples[0].contains("refs[1] (ref_id 1)"), "{examples:?}");
    assert!(
        examples[1].contains("refs[2] (ref_id 2): sentences[1]: has no key \"sent\""),
        "{examples:?}"
    );
    assert_eq!(
        strings(&read_all(&summary.shards), "ref_id"),
        ["0", "0", "3"]
    );

    std::fs::write(&pickle, b"not a pickle").unwrap();
    let err = convert_refcoco(&source(&f, &pickle), &cfg(&dir.path().join("c")))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("refs(unc).p") && err.contains("pickle"),
        "{err}"
    );
}
