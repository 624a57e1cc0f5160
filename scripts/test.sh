#!/usr/bin/env bash
# Runs every test: the module-circle check, unit tests of each crate and the end-to-end tests
# (tests/e2e), with the oracles (transformers, tensorboard) from the set-up's pinned-torch
# environment, and a single-node Slurm cluster for the job-array test.
#
#   scripts/test.sh [CARGO TEST ARGS]                  # against PyTorch 2.13 (what CI runs)
#   scripts/test.sh --torch 2.11 [CARGO TEST ARGS]     # against PyTorch 2.11, in its own build
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
setup=()
if [ "${1:-}" = "--torch" ]; then
  setup=(--torch "${2:?--torch needs a version}")
  shift 2
fi
for a in "$@"; do [ "$a" = --release ] && setup+=(--release); done
ENV_FILE=$(bash "$ROOT/scripts/setup.sh" "${setup[@]}" --print-env)
bash "$ROOT/scripts/local_slurm.sh"
# shellcheck disable=SC1090
source "$ENV_FILE"
cd "$PALISADE_SRC"
echo "[test] PyTorch $PALISADE_TORCH_VERSION, source $PALISADE_SRC" >&2
# Modules inside a crate must not import each other in a circle.
python3 scripts/module_cycles.py
cargo test --workspace "$@"
