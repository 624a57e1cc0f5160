//! Shard layout of every converter: file names, rows per shard and row group, zstd, temporary
//! names, and refusing to mix with an earlier conversion.

use std::path::Path;

use palisade_data::convert::{convert_jsonl, ConvertConfig, JsonlSource};
use palisade_data::ShardInfo;
use parquet::basic::Compression;
use parquet::file::reader::{FileReader, SerializedFileReader};

use crate::common::{read_all, strings};
use crate::fixtures;

fn source(m: &fixtures::Manifest) -> JsonlSource {
    JsonlSource {
        manifest: m.path.clone(),
        images: Some(m.images.clone()),
        lang: "en".into(),
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn shards_and_row_groups_follow_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let m = fixtures::manifest(dir.path(), 11);
    let out = dir.path().join("out");
    let cfg = ConvertConfig {
        rows_per_shard: 5,
        rows_per_group: 2,
        ..ConvertConfig::new(&out, "web")
    };
    let summary = convert_jsonl(&source(&m), &cfg).unwrap();
    assert_eq!(summary.rows, 11);
    assert_eq!(
        names(&out),
        [
            "web-00000-of-00003.parquet",
            "web-00001-of-00003.parquet",
            "web-00002-of-00003.parquet"
        ],
        "no temporary files may remain"
    );
    let groups: Vec<Vec<usize>> = summary
        .shards
        .iter()
        .map(|p| ShardInfo::open(p).unwrap().row_groups().to_vec())
        .collect();
    assert_eq!(groups, [vec![2, 2, 1], vec![2, 2, 1], vec![1]]);
    let reader =
        SerializedFileReader::new(std::fs::File::open(&summary.shards[0]).unwrap()).unwrap();
    let rg = reader.metadata().row_group(0);
    for c in rg.columns() {
        assert!(
            matches!(c.compression(), Compression::ZSTD(_)),
            "{:?}",
            c.compression()
        );
    }
    let ids: Vec<String> = m.expected.iter().map(|e| e.0.clone()).collect();
    assert_eq!(strings(&read_all(&summary.shards), "id"), ids);
}

#[test]
fn existing_shards_are_refused_and_failures_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let m = fixtures::manifest(dir.path(), 4);
    let out = dir.path().join("out");
    let cfg = ConvertConfig {
        rows_per_shard: 1,
        rows_per_group: 1,
        ..ConvertConfig::new(&out, "web")
    };
    convert_jsonl(&source(&m), &cfg).unwrap();
    let err = convert_jsonl(&source(&m), &cfg).unwrap_err().to_string();
    assert!(
        err.contains("web-00000-of-00004.parquet and 3 more") && err.contains("--prefix"),
        "{err}"
    );

    // Three one-row shards are complete before the fourth image turns out missing.
    let other = dir.path().join("other");
    std::fs::remove_file(m.images.join("part1/img-3.webp")).unwrap();
    let one_per_shard = ConvertConfig {
        out_dir: other.clone(),
        ..cfg.clone()
    };
    let err = convert_jsonl(&source(&m), &one_per_shard)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("line 5") && err.contains("img-3.webp"),
        "{err}"
    );
    assert!(names(&other).is_empty(), "{:?}", names(&other));
    let bad = ConvertConfig {
        rows_per_group: 0,
        ..cfg
    };
    let err = convert_jsonl(&source(&m), &bad).unwrap_err().to_string();
    assert!(err.contains("rows_per_group"), "{err}");
}
