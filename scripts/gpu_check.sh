#!/usr/bin/env bash
# GPU check for a machine with NVIDIA GPUs: builds, then
#   1. loads NCCL from the PyTorch wheel (sharding unit tests),
#   2. times a SigLIP train step on one GPU with bf16 autocast (pairs/s),
#   3. with ≥ 2 GPUs: trains the demo data-parallel over all visible GPUs under `palisade launch`
#      with the NCCL backend, and once more with the MPI-staged backend for comparison.
# Prints PASS/FAIL per check and exits non-zero if any failed. Not run in CI (no GPU there).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh || { echo "FAIL set-up"; exit 1; }
# shellcheck disable=SC1091
source "${PALISADE_HOME:-$HOME/.cache/palisade}/env.sh"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/palisade"
fails=0
check() { local name=$1; shift; echo "== $name"; if "$@"; then echo "PASS $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi; }

nvidia-smi --query-gpu=name,memory.total --format=csv || true
NGPU=$(nvidia-smi -L 2>/dev/null | wc -l)
check "nccl-loads" cargo test -q -p palisade-sharding nccl
check "train-step-cuda-bf16" "$BIN" bench train-step configs/demo/siglip_shapes.yaml --set device=cuda --steps 50 --warmup 5
check "train-step-cuda-b16" "$BIN" bench train-step configs/bench/siglip_b16.yaml --set device=cuda --set train.batch_size=64 --steps 20 --warmup 3
if [ "$NGPU" -ge 2 ]; then
  run=$(mktemp -d)
  check "dp-nccl-${NGPU}gpu" env PALISADE_BACKEND=nccl "$BIN" launch --nproc-per-node "$NGPU" -- \
    train configs/demo/siglip_shapes.yaml --set device=cuda --set train.steps=100 --run-dir "$run/nccl" --no-progress
  check "dp-staged-${NGPU}gpu" "$BIN" launch --nproc-per-node "$NGPU" -- \
    train configs/demo/siglip_shapes.yaml --set device=cuda --set train.steps=100 --run-dir "$run/tcp" --no-progress
  grep -h '"train/examples_per_sec"' "$run"/*/metrics.jsonl | tail -2
else
  echo "one GPU: skipping the data-parallel checks"
fi
echo "$fails check(s) failed"
exit "$fails"
