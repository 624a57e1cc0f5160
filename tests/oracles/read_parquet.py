"""Reads Parquet shards written by palisade with pyarrow and with Hugging Face `datasets`, and
prints what each saw, for the Rust test to compare with what it wrote.

Usage: python read_parquet.py REQUEST.json
REQUEST: {"cache_dir": DIR, "datasets": {NAME: [file, ...]}}. Prints JSON
{NAME: {"pyarrow": {...}, "datasets": {...}}} where each side has "schema" ({column: type}),
"num_rows" and "rows" (binary values as "bytes:LEN:FNV1A64"), and the pyarrow side also the
row counts of each file's row groups and the compression codecs found.
"""
import json
import sys

import pyarrow as pa
import pyarrow.parquet as pq


def fnv1a64(data: bytes) -> str:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def plain(v):
    if isinstance(v, (bytes, bytearray)):
        return f"bytes:{len(v)}:{fnv1a64(bytes(v))}"
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return v


def arrow_type(t: pa.DataType) -> str:
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"list<{arrow_type(t.value_type)}>"
    if pa.types.is_struct(t):
        return "struct<" + ", ".join(f"{f.name}: {arrow_type(f.type)}" for f in t) + ">"
    return str(t)


def with_pyarrow(files):
    table = pa.concat_tables([pq.read_table(f) for f in files])
    groups, codecs = [], set()
    for f in files:
        meta = pq.ParquetFile(f).metadata
        groups.append([meta.row_group(i).num_rows for i in range(meta.num_row_groups)])
        for i in range(meta.num_row_groups):
            rg = meta.row_group(i)
            codecs.update(rg.column(j).compression for j in range(rg.num_columns))
    return {
        "schema": {f.name: arrow_type(f.type) for f in table.schema},
        "num_rows": table.num_rows,
        "row_groups": groups,
        "compression": sorted(codecs),
        "rows": [plain(r) for r in table.to_pylist()],
    }


def feature_type(f) -> str:
    import datasets

    if isinstance(f, datasets.Value):
        return f.dtype
    if isinstance(f, (getattr(datasets, "List", ()), datasets.Sequence)):
        return f"list<{feature_type(f.feature)}>"
    if isinstance(f, dict):
        return "struct<" + ", ".join(f"{k}: {feature_type(v)}" for k, v in f.items()) + ">"
    return type(f).__name__


def with_datasets(files, cache_dir):
    import datasets

    ds = datasets.load_dataset("parquet", data_files={"train": files}, split="train",
                               cache_dir=cache_dir)
    return {
        "schema": {k: feature_type(v) for k, v in ds.features.items()},
        "num_rows": ds.num_rows,
        "rows": [plain(r) for r in ds],
    }


def main(request_path: str) -> None:
    with open(request_path, encoding="utf-8") as f:
        request = json.load(f)
    out = {}
    for name, files in request["datasets"].items():
        out[name] = {
            "pyarrow": with_pyarrow(files),
            "datasets": with_datasets(files, request["cache_dir"]),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
