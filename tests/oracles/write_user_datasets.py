"""Rewrites palisade's synthetic shapes shards the ways users' datasets come: as img2dataset
writes them (columns key, jpg, caption, url, width, height, status; no lang; failed downloads
as rows with a null jpg) and as a Hugging Face `datasets` dataset with an Image column (a
struct {bytes, path}; some rows only name a PNG file beside the shard).

Usage: python write_user_datasets.py SRC_DIR OUT_DIR
Writes OUT_DIR/img2dataset/*.parquet and OUT_DIR/hf/*.parquet (+ hf/images/), one file per
source shard with its row groups. Prints JSON {"rows": N, "failed": F, "by_path": P}.
"""
import io
import json
import sys
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image


def main(src: Path, out: Path) -> None:
    i2d, hf = out / "img2dataset", out / "hf"
    (hf / "images").mkdir(parents=True, exist_ok=True)
    i2d.mkdir(parents=True, exist_ok=True)
    rows = failed = by_path = 0
    for shard in sorted(src.glob("*.parquet")):
        f = pq.ParquetFile(shard)
        group = f.metadata.row_group(0).num_rows
        t = f.read(columns=["id", "image", "text", "primary_shape", "primary_color"])
        # Zero-shot labels ride along as the extra columns users' datasets carry.
        labels = {c: t.column(c).to_pylist() for c in ["primary_shape", "primary_color"]}
        ids = t.column("id").to_pylist()
        pngs = t.column("image").to_pylist()
        texts = t.column("text").to_pylist()

        # img2dataset: JPEG bytes, every 8th download failed (null jpg, status says so).
        jpgs, status, widths = [], [], []
        for i, png in enumerate(pngs):
            img = Image.open(io.BytesIO(png)).convert("RGB")
            widths.append(img.width)
            if (rows + i) % 8 == 7:
                jpgs.append(None)
                status.append("failed_to_download")
                failed += 1
            else:
                buf = io.BytesIO()
                img.save(buf, "JPEG", quality=95)
                jpgs.append(buf.getvalue())
                status.append("success")
        table = pa.table(
            {
                "key": pa.array(ids),
                "jpg": pa.array(jpgs, pa.binary()),
                "caption": pa.array(texts),
                "url": pa.array([f"https://example.com/{k}.jpg" for k in ids]),
                "width": pa.array(widths, pa.int64()),
                "height": pa.array(widths, pa.int64()),
                "status": pa.array(status),
                **{c: pa.array(v) for c, v in labels.items()},
            }
        )
        pq.write_table(table, i2d / shard.name, row_group_size=group)

        # Hugging Face: the same PNG bytes in an Image column; every 5th row by file path only.
        images = []
        for i, (k, png) in enumerate(zip(ids, pngs)):
            if (rows + i) % 5 == 4:
                (hf / "images" / f"{k}.png").write_bytes(png)
                images.append({"bytes": None, "path": f"images/{k}.png"})
                by_path += 1
            else:
                images.append({"bytes": png, "path": None})
        ds = datasets.Dataset.from_dict(
            {"id": ids, "image": images, "text": texts, **labels},
            features=datasets.Features(
                {
                    "id": datasets.Value("string"),
                    "image": datasets.Image(),
                    "text": datasets.Value("string"),
                    **{c: datasets.Value("string") for c in labels},
                }
            ),
        )
        ds.to_parquet(str(hf / shard.name), batch_size=group)
        rows += len(ids)
    print(json.dumps({"rows": rows, "failed": failed, "by_path": by_path}))


if __name__ == "__main__":
    datasets.disable_progress_bars()
    main(Path(sys.argv[1]), Path(sys.argv[2]))
