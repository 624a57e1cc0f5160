"""Baseline for `palisade bench data`: a plain Python loader on one core — pyarrow reads each
row group, PIL decodes and resizes (bilinear) each image, numpy scales to [-1, 1] in CHW and
stacks batches. Prints images/s over the same shards.

`--draft` adds PIL's `Image.draft("RGB", (S, S))` before decoding: libjpeg's scaled decode at
1/2, 1/4 or 1/8 when the image stays at least S on both sides (the same rule as palisade's scaled
decoding). It is reported as its own row, not as the baseline.

Usage: python benchmarks/pil_loader.py SHARD... [--resolution 224] [--batch 64] [--draft]
"""
import argparse
import io
import json
import time

import numpy as np
import pyarrow.parquet as pq
from PIL import Image


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("shards", nargs="+")
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--draft", action="store_true", help="decode JPEGs with Image.draft")
    a = ap.parse_args()
    s = a.resolution
    start = time.perf_counter()
    n = 0
    batch = []
    for path in a.shards:
        f = pq.ParquetFile(path)
        for rg in range(f.num_row_groups):
            t = f.read_row_group(rg, columns=["image", "text"])
            for b in t.column("image").to_pylist():
                img = Image.open(io.BytesIO(b))
                if a.draft:
                    img.draft("RGB", (s, s))
                img = img.convert("RGB").resize((s, s), Image.BILINEAR)
                x = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 127.5 - 1.0
                batch.append(x)
                n += 1
                if len(batch) == a.batch:
                    np.stack(batch)
                    batch = []
    secs = time.perf_counter() - start
    impl = "pyarrow + PIL draft, one core" if a.draft else "pyarrow + PIL, one core"
    print(json.dumps({"impl": impl, "images": n, "seconds": secs, "images_per_sec": n / secs}))


if __name__ == "__main__":
    main()
