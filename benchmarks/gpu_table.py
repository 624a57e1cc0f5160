"""The table of scripts/gpu_check.sh: reads the JSON each check wrote into its output folder
(NAME.palisade.json, NAME.torch.json) and prints one Markdown table, palisade beside PyTorch
eager, with MFU where the card's dense bf16 peak is known.

Usage: python3 benchmarks/gpu_table.py OUT_DIR --gpu "NVIDIA H200" --gpus 1 --seconds 312
"""
import argparse
import json
import os

# Dense bf16 peaks (no sparsity), FLOP/s, by a name fragment nvidia-smi prints.
PEAKS = [("H200", 989.4e12), ("H100", 989.4e12), ("A100", 312e12), ("L40S", 362e12), ("A10", 125e12), ("L4", 121e12)]


def lines(out, name, side):
    path = os.path.join(out, f"{name}.{side}.json")
    if not os.path.exists(path):
        return None
    rows = []
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return rows or None


def status(out, name, side):
    if os.path.exists(os.path.join(out, f"{name}.{side}.skip")):
        return "skipped (see %s.%s.log)" % (name, side)
    return "FAIL (see %s.%s.log)" % (name, side) if os.path.exists(os.path.join(out, f"{name}.{side}.log")) else "not run"


def step_cell(r, flops, peak):
    ms = r["ms_per_step_median"]
    mfu = f", MFU {100 * flops / (ms / 1000) / peak:.1f}%" if peak and flops else ""
    return f"{ms:.1f} ms, {r['examples_per_sec']:.1f}/s{mfu}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--gpu", default="no GPU")
    ap.add_argument("--gpus", type=int, default=0)
    ap.add_argument("--seconds", type=int, default=0)
    a = ap.parse_args()
    peak = next((p for frag, p in PEAKS if frag in a.gpu), None) if a.gpus else None
    rows = []
    doc = (lines(a.out, "doctor", "palisade") or [{}])[0]
    rows.append(("PyTorch", f"libtorch {doc.get('libtorch_version')} (built for {doc.get('built_for_torch')})", "", ""))
    rows.append(("GPU", f"{a.gpus} × {a.gpu}" if a.gpus else "no GPU", "", ""))
    nccl = f"NCCL {doc['nccl_version']} from {doc['nccl_path']}" if doc.get("nccl_version") else f"not loaded: {doc.get('nccl_error')}"
    rows.append(("NCCL", nccl, "", ""))
    for name, label in [("siglip_b16", "SigLIP B/16 train step"), ("pali_tiny", "PaLI tiny train step"),
                        ("pali_base", "PaLI base (B/16 + T5-base) train step")]:
        mine, theirs = lines(a.out, name, "palisade"), lines(a.out, name, "torch")
        if not mine:
            rows.append((label, status(a.out, name, "palisade"), "", ""))
            continue
        m = mine[0]
        label = f"{label}, batch {m['batch_size']}, {m['device']}"
        flops = m.get("flops_per_step")
        t = step_cell(theirs[0], flops, peak) if theirs else status(a.out, name, "torch")
        ratio = f"{m['ms_per_step_median'] / theirs[0]['ms_per_step_median']:.2f}×" if theirs else ""
        rows.append((label, step_cell(m, flops, peak), t, ratio))
    mine, theirs = lines(a.out, "decode", "palisade"), lines(a.out, "decode", "torch")
    pick = lambda rs: next((r for r in rs if r["strategy"] == "greedy" and r["use_cache"]), None) if rs else None
    m, t = pick(mine), pick(theirs)
    if m:
        rows.append(("greedy decoding (KV cache), tokens/s", f"{m['tokens_per_sec']:.0f}",
                     f"{t['tokens_per_sec']:.0f}" if t else status(a.out, "decode", "torch"),
                     f"{t['seconds'] / m['seconds']:.2f}× faster" if t else ""))
    else:
        rows.append(("greedy decoding", status(a.out, "decode", "palisade"), "", ""))
    metrics = os.path.join(a.out, "dp_nccl", "metrics.jsonl")
    if os.path.exists(metrics):
        eps = [json.loads(l).get("values", json.loads(l)).get("train/examples_per_sec") for l in open(metrics)]
        eps = [e for e in eps if e]
        rows.append((f"data parallel over NCCL, {a.gpus} GPUs", f"{eps[-1]:.0f} pairs/s" if eps else "no metrics", "", ""))
    elif a.gpus >= 2:
        rows.append((f"data parallel over NCCL, {a.gpus} GPUs", status(a.out, "dp_nccl", "palisade"), "", ""))
    text = ["| check | palisade | PyTorch eager + transformers | palisade time ÷ PyTorch's |", "|---|---|---|---|"]
    text += [f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |" for r in rows]
    text.append(f"\nwhole check: {a.seconds} s")
    print("\n".join(text))
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write("\n".join(text) + "\n")


if __name__ == "__main__":
    main()
