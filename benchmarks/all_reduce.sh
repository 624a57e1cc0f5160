#!/usr/bin/env bash
# The all-reduce tensor parallelism sends, side by side in one run: palisade over MPI
# (mpirun) and over TCP (palisade launch), and torch.distributed's gloo (torchrun), at the
# same ranks and sizes. docs/scaling.md ("Communication model").
#   benchmarks/all_reduce.sh [RANKS] [MIB_LIST]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "${PALISADE_HOME:-$HOME/.cache/palisade}/env.sh"
PALISADE="${CARGO_TARGET_DIR:-$ROOT/target}/debug/palisade"
N="${1:-2}"
MIB="${2:-0.25,1,4,16,64}"
export RUST_LOG=warn
mpirun --oversubscribe --bind-to none -np "$N" "$PALISADE" bench all-reduce --mib "$MIB" 2>/dev/null
"$PALISADE" launch --nproc-per-node "$N" -- bench all-reduce --mib "$MIB" 2>/dev/null | sed 's/^\[rank [0-9]*\] //'
OMP_NUM_THREADS=1 python -m torch.distributed.run --nproc-per-node "$N" --master-port 29571 \
  "$ROOT/benchmarks/all_reduce.py" --mib "$MIB" 2>/dev/null
