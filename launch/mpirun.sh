#!/usr/bin/env bash
# Data-parallel training with OpenMPI (MPI backend), on this node or on the hosts of a hostfile.
#
#   launch/mpirun.sh 4 configs/demo/siglip_shapes.yaml [--set KEY=VALUE ...]
#   HOSTFILE=hosts.txt launch/mpirun.sh 16 CONFIG     # hosts.txt lines: "node1 slots=8"
#
# Every rank runs `palisade train CONFIG ARGS...`; train.batch_size is the global batch. The
# binary and the data paths must be visible at the same place on every host.
set -euo pipefail
NP=${1:?usage: launch/mpirun.sh NPROC CONFIG [TRAIN ARGS...]}
shift
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"   # builds target/debug/palisade (seconds when done)
# shellcheck disable=SC1091
source "${PALISADE_HOME:-$HOME/.cache/palisade}/env.sh"   # OMPI_ALLOW_RUN_AS_ROOT in containers
PALISADE="${PALISADE:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/palisade}"

args=(-np "$NP" --bind-to none)
# More ranks than cores is fine for tests; for speed keep NP at most the cores (or GPUs).
if [[ -n "${HOSTFILE:-}" ]]; then
  args+=(--hostfile "$HOSTFILE")
else
  args+=(--oversubscribe)
fi
# Forward the variables palisade reads to every host (-x NAME exports the current value).
for v in RUST_LOG PALISADE_BACKEND PALISADE_COLLECTIVE_TIMEOUT_S LD_LIBRARY_PATH; do
  [[ -n "${!v:-}" ]] && args+=(-x "$v")
done
exec mpirun "${args[@]}" "$PALISADE" train "$@" --no-progress
