"""Writes webli shards with pyarrow the ways other tools do (snappy and zstd, dictionary-encoded
strings, several row groups, large_binary images and large_string texts) and prints what each
row holds: id, text, lang and a checksum of its pixels, for palisade's loader to match.

Usage: python write_webli_parquet.py OUT_DIR SIDE
Prints JSON {"rows": [{"id", "text", "lang", "pixels_fnv"}], "files": [...]}; images are SIDE
pixels square, PNG or lossless WebP, so decoding is exact. pixels_fnv is FNV-1a 64 over the
channel-first (CHW) uint8 pixels, as hex.
"""
import io
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image


def fnv1a64(data: bytes) -> str:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def encode(pixels: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "WEBP":
        Image.fromarray(pixels).save(buf, format="WEBP", lossless=True)
    else:
        Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def main(out_dir: str, side: int) -> None:
    rng = np.random.default_rng(7)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    words = ["red", "green", "blue", "square", "circle", "on", "a", "dark", "field"]
    rows = []
    for i in range(26):
        pixels = rng.integers(0, 256, size=(side, side, 3), dtype=np.uint8)
        fmt = "WEBP" if i % 3 == 2 else "PNG"
        text = " ".join(rng.choice(words, size=4)) + ("" if i % 5 else " ümlaut ✓")
        rows.append({
            "id": f"py-{i:03d}",
            "text": text,
            "lang": ["en", "de", "fr"][i % 3],
            "image": encode(pixels, fmt),
            "pixels_fnv": fnv1a64(np.ascontiguousarray(pixels.transpose(2, 0, 1)).tobytes()),
        })

    def table(part, image_type, text_type):
        return pa.table({
            "id": pa.array([r["id"] for r in part], type=text_type),
            "image": pa.array([r["image"] for r in part], type=image_type),
            "text": pa.array([r["text"] for r in part], type=text_type),
            "lang": pa.array([r["lang"] for r in part], type=text_type),
        })

    files = []

    def write(name, part, **kw):
        path = out / name
        pq.write_table(part, path, **kw)
        files.append(str(path))

    # Parquet dictionary pages for every column, snappy, row groups of 4 (the last one short).
    write("a-snappy-dict.parquet", table(rows[0:10], pa.binary(), pa.string()),
          compression="snappy", use_dictionary=True, row_group_size=4)
    # 64-bit offsets (large_binary / large_string), zstd, plain encoding, row groups of 3.
    write("b-zstd-large.parquet", table(rows[10:18], pa.large_binary(), pa.large_string()),
          compression="zstd", use_dictionary=False, row_group_size=3)
    # Dictionary pages for some columns only, and Parquet data page v2.
    write("c-zstd-dict-v2.parquet", table(rows[18:26], pa.binary(), pa.string()),
          compression="zstd", use_dictionary=["lang", "text"], row_group_size=5,
          data_page_version="2.0")

    # Arrow dictionary columns (what pandas categoricals and dictionary_encode() produce).
    d = table(rows[26 - 8:26], pa.binary(), pa.string())
    d = d.set_column(3, "lang", d.column("lang").dictionary_encode())
    d = d.set_column(2, "text", d.column("text").dictionary_encode())
    write("d-arrow-dict.parquet", d, compression="zstd", row_group_size=5)
    for f in files:
        meta = pq.ParquetFile(f).metadata
        assert meta.num_row_groups > 1, f"{f} must have several row groups"
    manifest = [{k: r[k] for k in ("id", "text", "lang", "pixels_fnv")} for r in rows]
    print(json.dumps({"rows": manifest, "files": files}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
