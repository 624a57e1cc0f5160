#!/usr/bin/env bash
# One-command, idempotent set-up: Debian packages, the pinned PyTorch venv, and the build.
# A second run takes seconds: every step checks before it acts.
set -euo pipefail

TORCH_VERSION=2.13.0
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PALISADE_HOME="${PALISADE_HOME:-$HOME/.cache/palisade}"
VENV="$PALISADE_HOME/venv-torch$TORCH_VERSION"
STAMP_DIR="$PALISADE_HOME/stamps"
mkdir -p "$STAMP_DIR"

log() { echo "[setup] $*" >&2; }

# Debian packages for the -sys crates (mpi needs libclang + OpenMPI; the loader's scaled JPEG
# decoding links libjpeg-turbo) and the test oracles; chromium renders `palisade report`'s HTML
# page headless in tests/e2e/report.rs.
APT_PKGS=(libopenmpi-dev openmpi-bin libclang-dev pkg-config libjpeg62-turbo-dev chromium)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The pinned PyTorch (tch links its libtorch) plus the oracles used by tests; a constraints
# file keeps transformers & co. from moving torch.
REQS="$ROOT/scripts/requirements-oracle.txt"
want="torch==$TORCH_VERSION $(sha256sum "$REQS" | cut -c1-16)"
if [ "$(cat "$STAMP_DIR/venv" 2>/dev/null)" != "$want" ] || [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV (PyTorch $TORCH_VERSION; first time takes minutes)"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  echo "torch==$TORCH_VERSION" > "$PALISADE_HOME/constraints.txt"
  "$VENV/bin/pip" install -q "torch==$TORCH_VERSION"
  "$VENV/bin/pip" install -q -c "$PALISADE_HOME/constraints.txt" -r "$REQS"
  got=$("$VENV/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])')
  [ "$got" = "$TORCH_VERSION" ] || { log "torch is $got, expected $TORCH_VERSION"; exit 1; }
  echo "$want" > "$STAMP_DIR/venv"
fi

# Environment for tch's build script and for running: written once, sourced by the wrappers.
TORCH_LIB=$("$VENV/bin/python" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
cat > "$PALISADE_HOME/env.sh" <<ENV
export LIBTORCH_USE_PYTORCH=1
export LIBTORCH_BYPASS_VERSION_CHECK=\${LIBTORCH_BYPASS_VERSION_CHECK:-0}
export PATH="$VENV/bin:\$PATH"
export VIRTUAL_ENV="$VENV"
export PALISADE_PYTHON="$VENV/bin/python"
export PALISADE_TORCH_LIB="$TORCH_LIB"
export LD_LIBRARY_PATH="$TORCH_LIB\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export OMPI_ALLOW_RUN_AS_ROOT=1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ENV

# Build the CLI (incremental; seconds when nothing changed). The rpath to libtorch comes from
# PALISADE_TORCH_LIB, so the binary runs without LD_LIBRARY_PATH.
if [ "${PALISADE_SKIP_BUILD:-0}" != 1 ]; then
  # shellcheck disable=SC1091
  source "$PALISADE_HOME/env.sh"
  cargo build -q --manifest-path "$ROOT/Cargo.toml" -p palisade-cli
fi
