#!/usr/bin/env bash
# GPU check, run from a bundle (scripts/bundle.sh) with no build: one table of
#   - which PyTorch, libtorch and NCCL palisade loaded (NCCL's version);
#   - a SigLIP B/16 train step at 224 px, batch 256, CUDA bf16: pairs/s and MFU, beside the same
#     step in PyTorch eager (this machine's transformers SiglipModel, bf16 autocast, fused AdamW);
#   - PaLI train steps at tiny and at T5-base sizes, each beside PyTorch eager;
#   - greedy decoding tokens/s beside transformers' generate;
#   - with ≥ 2 GPUs, the demo data-parallel over NCCL under `palisade launch`.
# Without a GPU it runs the same rows on the CPU at small sizes, says "no GPU" and exits 0.
# Exits non-zero only when a palisade check fails (a PyTorch baseline that cannot run, say for
# want of transformers, is reported as skipped).
#
#   BUNDLE/gpu_check.sh                          # inside a bundle
#   scripts/gpu_check.sh --bundle DIR            # from a checkout, against a built bundle
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUNDLE="$HERE"
[ "${1:-}" = "--bundle" ] && BUNDLE="$(cd "${2:?--bundle DIR}" && pwd)"
[ -f "$BUNDLE/TORCH_VERSION" ] || { echo "no bundle at $BUNDLE (build one with scripts/bundle.sh, or pass --bundle DIR)" >&2; exit 2; }
P="$BUNDLE/palisade"
PY="${PALISADE_PYTHON:-python3}"
OUT="${GPU_CHECK_OUT:-$(mktemp -d)}"
mkdir -p "$OUT"
cd "$OUT"
fails=0
started=$(date +%s)

# run NAME SIDE CMD...: stdout (JSON lines) into NAME.SIDE.json, stderr into NAME.SIDE.log.
run() {
  local name=$1 side=$2; shift 2
  echo "== $name ($side)" >&2
  if "$@" > "$name.$side.json" 2> "$name.$side.log"; then return 0; fi
  tail -3 "$name.$side.log" >&2
  if [ "$side" = palisade ]; then fails=$((fails + 1)); else echo "skipped" > "$name.$side.skip"; fi
  return 1
}

run doctor palisade "$P" doctor --json
NGPU=0
command -v nvidia-smi >/dev/null && NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
if [ "$NGPU" -gt 0 ]; then
  DEV=cuda GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
  SIG=(--set train.batch_size=256) SIG_STEPS=(--steps 10 --warmup 3)
  PALI_TINY=(--batch 256) PALI_BASE=(--batch 64) PALI_STEPS=(--steps 10 --warmup 3)
  DEC=(--preset t5-v1_1-base --batch 8 --new-tokens 32 --repeats 3)
else
  echo "no GPU: running the CPU side at small sizes" >&2
  DEV=cpu GPU_NAME="no GPU"
  SIG=(--set train.batch_size=8 --set threads=0) SIG_STEPS=(--steps 3 --warmup 1)
  PALI_TINY=(--batch 8) PALI_BASE=(--batch 2) PALI_STEPS=(--steps 2 --warmup 1)
  DEC=(--preset t5-v1_1-small --batch 2 --new-tokens 8 --repeats 1)
fi
THREADS=$(nproc)

run siglip_b16 palisade "$P" bench train-step "$BUNDLE/configs/bench/siglip_b16.yaml" --set device=$DEV \
  "${SIG[@]}" "${SIG_STEPS[@]}" --model-config-out siglip_b16.config.json &&
  run siglip_b16 torch "$PY" "$BUNDLE/benchmarks/siglip_train_step.py" siglip_b16.config.json --device $DEV \
    --batch "$(sed -n 's/.*"batch_size":\([0-9]*\).*/\1/p' siglip_b16.palisade.json)" --threads "$THREADS" "${SIG_STEPS[@]}"
for size in tiny base; do
  shape=PALI_${size^^}[@]
  run "pali_$size" palisade "$P" bench pali-train-step --preset $size --device $DEV --vocab 33152 \
    "${!shape}" "${PALI_STEPS[@]}" --model-config-out "pali_$size.config.json" &&
    run "pali_$size" torch "$PY" "$BUNDLE/benchmarks/pali_train_step.py" "pali_$size.config.json" --device $DEV \
      "${!shape}" "${PALI_STEPS[@]}" --threads "$THREADS"
done
run decode palisade "$P" bench decode --device $DEV "${DEC[@]}" --model-config-out decode.config.json &&
  run decode torch "$PY" "$BUNDLE/benchmarks/t5_decode.py" decode.config.json --device $DEV \
    "${DEC[@]:2}" --threads "$THREADS"
if [ "$NGPU" -ge 2 ]; then
  run dp_nccl palisade env PALISADE_BACKEND=nccl "$P" launch --nproc-per-node "$NGPU" -- \
    train "$BUNDLE/configs/demo/siglip_shapes.yaml" --set device=cuda --set train.steps=100 \
    --set train.eval_every=0 --run-dir "$OUT/dp_nccl" --no-progress
fi

"$PY" "$BUNDLE/benchmarks/gpu_table.py" "$OUT" --gpu "$GPU_NAME" --gpus "$NGPU" --seconds $(( $(date +%s) - started ))
[ "$NGPU" -gt 0 ] || echo "no GPU: the CPU parts ran"
echo "$fails palisade check(s) failed; outputs in $OUT"
[ "$fails" = 0 ]
