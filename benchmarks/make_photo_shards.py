"""Writes webli-style Parquet shards of real-photo JPEGs for `palisade bench data`: random crops
(half to all of the frame, aspect 3:4 to 4:3) of the photographs bundled with scikit-image,
resized so the long side is 500 px (COCO-like) and saved as JPEG quality 90.

Usage: python benchmarks/make_photo_shards.py OUT_DIR [--rows 2000] [--rows-per-shard 1000]
"""
import argparse
import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image
from skimage import data

PHOTOS = ["astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field", "retina"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--rows-per-shard", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    photos = [Image.fromarray(getattr(data, n)()).convert("RGB") for n in PHOTOS]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(a.rows):
        k = int(rng.integers(len(photos)))
        img = photos[k]
        w, h = img.size
        scale = rng.uniform(0.5, 1.0)
        aspect = rng.uniform(3 / 4, 4 / 3)
        cw = int(min(w, w * scale * aspect ** 0.5))
        ch = int(min(h, h * scale / aspect ** 0.5))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        crop = img.crop((x, y, x + cw, y + ch))
        f = 500 / max(cw, ch)
        crop = crop.resize((max(1, round(cw * f)), max(1, round(ch * f))), Image.BICUBIC)
        buf = io.BytesIO()
        crop.save(buf, format="JPEG", quality=90)
        rows.append({"id": f"photo-{i}", "image": buf.getvalue(), "text": f"a photo of {PHOTOS[k]}", "lang": "en"})
    for s in range(0, a.rows, a.rows_per_shard):
        part = rows[s:s + a.rows_per_shard]
        table = pa.table({k: [r[k] for r in part] for k in ["id", "image", "text", "lang"]})
        pq.write_table(table, out / f"photos-{s // a.rows_per_shard:05d}.parquet", row_group_size=256, compression="snappy")
    print(f"wrote {a.rows} photo JPEGs to {out}")


if __name__ == "__main__":
    main()
