//! Shards written by pyarrow (snappy and zstd, dictionary-encoded strings, several row groups,
//! large_binary images and large_string texts) read by palisade's loader with the webli spec.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use palisade_data::{one_pass, DataSpec, LoaderConfig, ShardIndex, TextTokenizer};
use serde::Deserialize;

use crate::common::{fnv1a64, oracle};

#[derive(Deserialize)]
struct Written {
    rows: Vec<Row>,
    files: Vec<PathBuf>,
}

#[derive(Deserialize, Debug, Clone, PartialEq)]
struct Row {
    id: String,
    text: String,
    lang: String,
    pixels_fnv: String,
}

#[test]
fn pyarrow_shards_load_with_the_webli_spec() {
    const SIDE: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("shards");
    let side = PathBuf::from(SIDE.to_string());
    let json = oracle("write_webli_parquet.py", &[&out, &side], dir.path());
    let written: Written = serde_json::from_str(&json).unwrap();
    assert_eq!(written.files.len(), 4);

    let spec = DataSpec::embedded("webli").unwrap();
    let index = ShardIndex::build(&written.files, &spec).unwrap();
    let groups: Vec<Vec<usize>> = index
        .shards()
        .iter()
        .map(|s| s.row_groups().to_vec())
        .collect();
    assert_eq!(
        groups,
        [vec![4, 4, 2], vec![3, 3, 2], vec![5, 3], vec![5, 3]]
    );

    let texts: Vec<String> = written.rows.iter().map(|r| r.text.clone()).collect();
    let cfg = LoaderConfig {
        shards: written.files.clone(),
        spec,
        tokenizer: Arc::new(TextTokenizer::train(&texts, 64).unwrap()),
        image_size: SIDE,
        text_len: 12,
        batch_size: 5,
        seed: 0,
        shuffle: false,
        label_columns: vec!["lang".into()],
        threads: 2,
    };
    let mut got = BTreeMap::new();
    let mut dup = 0;
    for b in one_pass(cfg, 0, 1).unwrap() {
        assert_eq!(b.skipped, 0, "no row of a pyarrow shard may be skipped");
        let plane = 3 * SIDE * SIDE;
        for i in 0..b.size {
            // The loader scales u8 to [-1, 1]; same-size images are not resampled, so this is exact.
            let bytes: Vec<u8> = b.pixels[i * plane..(i + 1) * plane]
                .iter()
                .map(|v| ((v + 1.0) * 127.5).round() as u8)
                .collect();
            let row = Row {
                id: b.ids[i].clone(),
                text: b.texts[i].clone(),
                lang: b.labels["lang"][i].clone(),
                pixels_fnv: fnv1a64(&bytes),
            };
            if let Some(prev) = got.insert(row.id.clone(), row.clone()) {
                assert_eq!(prev, row);
                dup += 1;
            }
        }
    }
    let want: BTreeMap<String, Row> = written
        .rows
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    assert_eq!((got.len(), dup), (26, 8));
    assert_eq!(got, want);
}
