#!/usr/bin/env bash
# Runs every test: the module-circle check, unit tests of each crate and the end-to-end tests
# (tests/e2e), with the oracles (transformers, tensorboard) from the set-up's pinned-torch
# environment, and a single-node Slurm cluster for the job-array test.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
bash "$ROOT/scripts/local_slurm.sh"
PALISADE_HOME="${PALISADE_HOME:-$HOME/.cache/palisade}"
# shellcheck disable=SC1091
source "$PALISADE_HOME/env.sh"
cd "$ROOT"
# Modules inside a crate must not import each other in a circle.
python3 scripts/module_cycles.py
cargo test --workspace "$@"
