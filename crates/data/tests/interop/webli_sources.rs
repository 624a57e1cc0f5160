//! webdataset tars and JSON-lines image folders to `webli` shards, read back by the loader.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use palisade_data::convert::{
    convert_jsonl, convert_webdataset, ConvertConfig, JsonlSource, WebdatasetSource,
};
use palisade_data::{one_pass, DataSpec, LoaderConfig, TextTokenizer};

use crate::common::{assert_layout, binaries, read_all, strings};
use crate::fixtures::{self, member};

fn cfg(out: &Path) -> ConvertConfig {
    ConvertConfig {
        rows_per_group: 3,
        ..ConvertConfig::new(out, "webli")
    }
}

/// Every row decodes in the real loader under the webli spec; returns the ids it produced.
fn loader_ids(shards: Vec<PathBuf>, texts: &[String]) -> Vec<String> {
    let tok = TextTokenizer::train(texts, 64).unwrap();
    let cfg = LoaderConfig {
        shards,
        spec: DataSpec::embedded("webli").unwrap(),
        tokenizer: Arc::new(tok),
        image_size: 4,
        text_len: 8,
        batch_size: 2,
        seed: 0,
        shuffle: false,
        label_columns: vec!["lang".into()],
        threads: 1,
    };
    let batches = one_pass(cfg, 0, 1).unwrap();
    assert!(batches.iter().all(|b| b.skipped == 0));
    batches.into_iter().flat_map(|b| b.ids).collect()
}

/// Two tars: key-grouped members, a `.json` that supplies lang or the caption, a stray file.
pub fn tars(dir: &Path) -> (Vec<PathBuf>, Vec<Vec<u8>>) {
    let imgs = vec![
        fixtures::jpeg(1, 6, 6),
        fixtures::png(2, 5, 5),
        fixtures::webp(3, 4, 4),
        fixtures::png(4, 3, 3),
    ];
    let a = dir.join("shard-000.tar");
    fixtures::tar(
        &a,
        vec![
            member("README", "not a sample"),
            member("s/000001.jpg", imgs[0].clone()),
            member("s/000001.txt", "a red square\n"),
            member("s/000002.txt", "zwei Kreise"),
            member("s/000002.png", imgs[1].clone()),
            member("s/000002.json", r#"{"lang": "de", "width": 5}"#),
            member("s/000003.webp", imgs[2].clone()),
            member(
                "s/000003.json",
                r#"{"caption": "from the json", "language": "fr"}"#,
            ),
        ],
    );
    let b = dir.join("shard-001.tar");
    fixtures::tar(
        &b,
        vec![
            member("000004.PNG", imgs[3].clone()),
            member("000004.txt", "last one"),
            member("000004.cls", "3"),
        ],
    );
    (vec![a, b], imgs)
}

#[test]
fn webdataset_samples_become_webli_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (tars, imgs) = tars(dir.path());
    let src = WebdatasetSource {
        tars,
        lang: "en".into(),
    };
    let summary = convert_webdataset(&src, &cfg(&dir.path().join("out"))).unwrap();
    assert_eq!((summary.rows, summary.skipped), (4, 0));
    assert_layout("webli", &summary.shards);
    let b = read_all(&summary.shards);
    let ids = ["s/000001", "s/000002", "s/000003", "000004"];
    assert_eq!(strings(&b, "id"), ids);
    let texts = strings(&b, "text");
    assert_eq!(
        texts,
        ["a red square", "zwei Kreise", "from the json", "last one"]
    );
    assert_eq!(strings(&b, "lang"), ["en", "de", "fr", "en"]);
    assert_eq!(binaries(&b, "image"), imgs);
    assert_eq!(loader_ids(summary.shards, &texts), ids);
}

#[test]
fn webdataset_bad_samples_are_named_or_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("bad.tar");
    fixtures::tar(
        &tar,
        vec![
            member("a.jpg", fixtures::jpeg(1, 4, 4)),
            member("a.txt", "fine"),
            member("b.png", fixtures::png(2, 4, 4)),
            member("c.jpg", b"GIF89a not really".to_vec()),
            member("c.txt", "bad image"),
            member("d.txt", "only text"),
        ],
    );
    let src = WebdatasetSource {
        tars: vec![tar],
        lang: "en".into(),
    };
    let err = convert_webdataset(&src, &cfg(&dir.path().join("o1")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.tar: sample \"b\""), "{err}");
    assert!(err.contains("no .txt member"), "{err}");

    let skipping = ConvertConfig {
        skip_missing: true,
        ..cfg(&dir.path().join("o2"))
    };
    let summary = convert_webdataset(&src, &skipping).unwrap();
    assert_eq!((summary.rows, summary.skipped), (1, 3));
    assert!(
        summary.skipped_examples[1].contains("c.jpg is Gif"),
        "{:?}",
        summary.skipped_examples
    );
    assert!(summary.skipped_examples[2].contains("sample \"d\": has no .jpg"));

    let gz = dir.path().join("x.tar.gz");
    std::fs::write(&gz, [0x1f, 0x8b, 8, 0, 0, 0]).unwrap();
    let src = WebdatasetSource {
        tars: vec![gz],
        lang: "en".into(),
    };
    let err = convert_webdataset(&src, &cfg(&dir.path().join("o3")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("x.tar.gz") && err.contains("gzip"), "{err}");
}

#[test]
fn jsonl_manifest_becomes_webli_rows() {
    let dir = tempfile::tempdir().unwrap();
    let m = fixtures::manifest(dir.path(), 5);
    let src = JsonlSource {
        manifest: m.path.clone(),
        images: Some(m.images.clone()),
        lang: "en".into(),
    };
    let summary = convert_jsonl(&src, &cfg(&dir.path().join("out"))).unwrap();
    assert_eq!(summary.rows, 5);
    assert_layout("webli", &summary.shards);
    let b = read_all(&summary.shards);
    let col = |k: usize| -> Vec<String> {
        m.expected
            .iter()
            .map(|e| [&e.0, &e.1, &e.2][k].clone())
            .collect()
    };
    assert_eq!(strings(&b, "id"), col(0));
    assert_eq!(strings(&b, "text"), col(1));
    assert_eq!(strings(&b, "lang"), col(2));
    let imgs: Vec<Vec<u8>> = m.expected.iter().map(|e| e.3.clone()).collect();
    assert_eq!(binaries(&b, "image"), imgs);
    assert_eq!(loader_ids(summary.shards, &col(1)), col(0));
}

#[test]
fn jsonl_bad_lines_and_missing_images_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let m = fixtures::manifest(dir.path(), 4);
    let mut text = std::fs::read_to_string(&m.path).unwrap();
    text.push_str("{\"image\": \"part0/img-0.webp\"}\n");
    std::fs::write(&m.path, &text).unwrap();
    std::fs::remove_file(m.images.join("part1/img-1.png")).unwrap();
    let src = JsonlSource {
        manifest: m.path.clone(),
        images: Some(m.images.clone()),
        lang: "en".into(),
    };
    let err = convert_jsonl(&src, &cfg(&dir.path().join("o1")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("manifest.jsonl: line 2: image"), "{err}");
    assert!(err.contains("img-1.png"), "{err}");

    let skipping = ConvertConfig {
        skip_missing: true,
        ..cfg(&dir.path().join("o2"))
    };
    let summary = convert_jsonl(&src, &skipping).unwrap();
    assert_eq!((summary.rows, summary.skipped), (3, 2));
    // Line 6 (after the blank line 3) lacks its text.
    let examples = &summary.skipped_examples;
    assert!(
        examples[1].contains("line 6: missing field `text`"),
        "{examples:?}"
    );
    assert_eq!(
        strings(&read_all(&summary.shards), "text")[2],
        "caption number 3"
    );
}
