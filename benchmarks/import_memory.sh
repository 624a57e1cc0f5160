#!/usr/bin/env bash
# Peak resident memory importing a ~1.5B-parameter bf16 sharded T5 (fp32 in memory, ~6 GB):
# `palisade import hf-t5` against transformers' from_pretrained on the same folder, in one run.
# Usage: benchmarks/import_memory.sh [SCRATCH_DIR]   (needs ~12 GB of disk there)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "${PALISADE_HOME:-$HOME/.cache/palisade}/env.sh"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/palisade"
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
rm -rf "$work/hub" "$work/imported"
python "$ROOT/benchmarks/import_memory.py" write "$work/hub"
# Peak resident set of a command in KiB (its output goes to $work/NAME.log).
peak() {
  local name=$1; shift
  /usr/bin/time -f "%M" -o "$work/$name.peak" "$@" >"$work/$name.log" 2>&1 \
    || { echo "$name failed:" >&2; cat "$work/$name.log" >&2; exit 1; }
  cat "$work/$name.peak"
}
ours=$(peak palisade "$BIN" import hf-t5 "$work/hub" --out "$work/imported")
theirs=$(peak transformers python "$ROOT/benchmarks/import_memory.py" reference "$work/hub")
echo "peak RSS: palisade import hf-t5 $((ours / 1024)) MiB, transformers from_pretrained (fp32) $((theirs / 1024)) MiB"
rm -rf "$work/hub" "$work/imported"
