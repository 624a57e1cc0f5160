//! Helpers shared by the interop tests: the oracle Python, reading shards back, layout checks.

use std::path::{Path, PathBuf};
use std::process::Command;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Float64Type, Int32Type};
use palisade_data::{DataSpec, ShardIndex, ShardInfo};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The oracle interpreter; these tests fail, not skip, without it.
pub fn python() -> PathBuf {
    PathBuf::from(std::env::var("PALISADE_PYTHON").expect(
        "PALISADE_PYTHON is unset: run `source ~/.cache/palisade/env.sh` (scripts/setup.sh writes it)",
    ))
}

/// Runs `tests/oracles/SCRIPT ARGS` offline and returns its stdout; panics with its stderr.
pub fn oracle(script: &str, args: &[&Path], home: &Path) -> String {
    let out = Command::new(python())
        .arg(repo().join("tests/oracles").join(script))
        .args(args)
        // Hugging Face libraries must not reach for the network or the user's cache.
        .env("HF_HOME", home.join("hf-home"))
        .env("HF_DATASETS_OFFLINE", "1")
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python().display()));
    assert!(
        out.status.success(),
        "{script} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("oracle output is UTF-8")
}

/// FNV-1a 64, as hex: the checksum the oracles print for bytes and pixels.
pub fn fnv1a64(data: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// How the read_parquet oracle spells a binary value.
pub fn bytes_tag(data: &[u8]) -> String {
    format!("bytes:{}:{}", data.len(), fnv1a64(data))
}

/// Every row of `shards`, in order, as one batch.
pub fn read_all(shards: &[PathBuf]) -> RecordBatch {
    let mut batches = Vec::new();
    for path in shards {
        let file = std::fs::File::open(path).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        batches.extend(reader.map(Result::unwrap));
    }
    arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
}

/// A utf8 column as strings.
pub fn strings(b: &RecordBatch, name: &str) -> Vec<String> {
    let a = b.column_by_name(name).unwrap().as_string::<i32>();
    (0..a.len()).map(|i| a.value(i).to_string()).collect()
}

/// A binary column as byte vectors.
pub fn binaries(b: &RecordBatch, name: &str) -> Vec<Vec<u8>> {
    let a = b.column_by_name(name).unwrap().as_binary::<i32>();
    (0..a.len()).map(|i| a.value(i).to_vec()).collect()
}

/// A list<utf8> column.
pub fn string_lists(b: &RecordBatch, name: &str) -> Vec<Vec<String>> {
    let a = b.column_by_name(name).unwrap().as_list::<i32>();
    (0..a.len())
        .map(|i| {
            let v = a.value(i);
            let s = v.as_string::<i32>();
            (0..s.len()).map(|j| s.value(j).to_string()).collect()
        })
        .collect()
}

/// A list<float64> column.
pub fn f64_lists(b: &RecordBatch, name: &str) -> Vec<Vec<f64>> {
    let a = b.column_by_name(name).unwrap().as_list::<i32>();
    (0..a.len())
        .map(|i| a.value(i).as_primitive::<Float64Type>().values().to_vec())
        .collect()
}

/// An int32 column.
pub fn i32s(b: &RecordBatch, name: &str) -> Vec<i32> {
    b.column_by_name(name)
        .unwrap()
        .as_primitive::<Int32Type>()
        .values()
        .to_vec()
}

fn list(item: DataType) -> DataType {
    DataType::List(std::sync::Arc::new(Field::new_list_field(item, false)))
}

/// The column layout the issue fixes for each kind: names, order and Arrow types.
pub fn layout(kind: &str) -> Vec<(&'static str, DataType)> {
    use DataType::{Binary, Float64, Int32, Utf8};
    match kind {
        "webli" => vec![
            ("image", Binary),
            ("text", Utf8),
            ("lang", Utf8),
            ("id", Utf8),
        ],
        "caption" => vec![
            ("image", Binary),
            ("captions", list(Utf8)),
            ("lang", Utf8),
            ("image_id", Utf8),
            ("id", Utf8),
        ],
        "vqa" => vec![
            ("image", Binary),
            ("question", Utf8),
            ("answers", list(Utf8)),
            ("question_id", Utf8),
            ("question_type", Utf8),
            ("answer_type", Utf8),
            ("image_id", Utf8),
            ("lang", Utf8),
            ("multiple_choice_answer", Utf8),
        ],
        "refcoco" => vec![
            ("image", Binary),
            ("expression", Utf8),
            ("box", list(Float64)),
            ("width", Int32),
            ("height", Int32),
            ("ref_id", Utf8),
            ("sent_id", Utf8),
            ("split", Utf8),
            ("image_id", Utf8),
            ("lang", Utf8),
        ],
        other => panic!("no layout for {other}"),
    }
}

/// The layout as a spec forbidding extra columns (list element types are checked separately).
fn layout_spec(kind: &str) -> DataSpec {
    let ty = |t: &DataType| match t {
        DataType::Binary => "binary",
        DataType::Utf8 => "utf8",
        DataType::Int32 => "int32",
        DataType::List(_) => "list",
        other => panic!("{other}"),
    };
    let cols: Vec<String> = layout(kind)
        .iter()
        .map(|(n, t)| format!("{{name: {n}, type: {}}}", ty(t)))
        .collect();
    let yaml = format!(
        "name: {kind}\ncolumns: [{}]\nextra_columns: forbidden\n",
        cols.join(", ")
    );
    DataSpec::parse(&yaml, Path::new("<issue layout>")).unwrap()
}

/// Checks converted shards have exactly the layout and pass the loader's spec check,
/// against the spec in `data_specs/` (or compiled in) once it exists.
pub fn assert_layout(kind: &str, shards: &[PathBuf]) {
    assert!(!shards.is_empty());
    for path in shards {
        let info = ShardInfo::open(path).unwrap();
        let got: Vec<(String, DataType)> = info
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        let want: Vec<(String, DataType)> = layout(kind)
            .into_iter()
            .map(|(n, t)| (n.to_string(), t))
            .collect();
        assert_eq!(got, want, "{}", path.display());
    }
    ShardIndex::build(shards, &layout_spec(kind)).unwrap();
    if let Ok(spec) = DataSpec::by_name(&repo().join("data_specs"), kind) {
        ShardIndex::build(shards, &spec)
            .unwrap_or_else(|e| panic!("spec {kind:?} rejects converted shards: {e}"));
    }
}
