#!/usr/bin/env bash
# One-command, idempotent set-up: Debian packages, the pinned PyTorch venv, and the build.
# A second run takes seconds: every step checks before it acts.
#
#   scripts/setup.sh                       # PyTorch 2.13 (tch 0.26): the default, what CI runs
#   scripts/setup.sh --torch 2.11          # PyTorch 2.11 (tch 0.24), in its own venv and target
#   scripts/setup.sh --torch-from PYTHON   # the PyTorch that PYTHON imports (2.11 or 2.13)
#   scripts/setup.sh ... --release         # build the release binary (scripts/bundle.sh)
#   scripts/setup.sh ... --print-env       # then print the env.sh to source for this build
#
# A build for another PyTorch than the manifest's lives in $PALISADE_HOME/torch-VERSION/: a
# generated copy of the source whose manifest names that PyTorch's tch (two tch versions cannot
# share a lockfile: both link `torch`), its target folder, and env.sh to source before cargo.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PALISADE_HOME="${PALISADE_HOME:-$HOME/.cache/palisade}"
STAMP_DIR="$PALISADE_HOME/stamps"
mkdir -p "$STAMP_DIR"

log() { echo "[setup] $*" >&2; }
die() { echo "[setup] error: $*" >&2; exit 2; }

# The PyTorch releases palisade builds against and the tch release that links each; tch follows
# PyTorch one to one, and there is no tch 0.25 (nor a tch for PyTorch 2.12).
SUPPORTED="2.13 (tch 0.26) and 2.11 (tch 0.24)"
tch_for() { case "$1" in 2.13) echo 0.26.0 ;; 2.11) echo 0.24.0 ;; *) return 1 ;; esac; }
DEFAULT_TORCH=2.13.0

TORCH_VERSION=$DEFAULT_TORCH TORCH_FROM="" RELEASE=0 PRINT_ENV=0
while [ $# -gt 0 ]; do
  case "$1" in
    --torch) TORCH_VERSION="${2:?--torch needs a version, e.g. 2.11}"; shift 2 ;;
    --torch=*) TORCH_VERSION="${1#--torch=}"; shift ;;
    --torch-from) TORCH_FROM="${2:?--torch-from needs a python}"; shift 2 ;;
    --release) RELEASE=1; shift ;;
    --print-env) PRINT_ENV=1; shift ;;
    *) die "unknown argument $1 (expected --torch VERSION, --torch-from PYTHON, --release, --print-env)" ;;
  esac
done
if [ -n "$TORCH_FROM" ]; then
  command -v "$TORCH_FROM" >/dev/null || die "--torch-from $TORCH_FROM: no such python"
  TORCH_VERSION=$("$TORCH_FROM" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null) ||
    die "--torch-from $TORCH_FROM: that python cannot import torch"
fi
case "$TORCH_VERSION" in *.*.*) ;; *) TORCH_VERSION="$TORCH_VERSION.0" ;; esac
MM="${TORCH_VERSION%.*}"
TCH=$(tch_for "$MM") || die "PyTorch $TORCH_VERSION has no matching tch; palisade builds against PyTorch $SUPPORTED"
MANIFEST_TCH=$(sed -n 's/^tch = "\(.*\)"/\1/p' "$ROOT/Cargo.toml")

# Where this build lives: the checkout itself for the manifest's PyTorch from our venv, else a
# folder of its own for that PyTorch (and, with --torch-from, that python).
if [ -z "$TORCH_FROM" ] && [ "${TCH%.*}" = "$MANIFEST_TCH" ]; then
  VARIANT="" SRC="$ROOT" ENV_FILE="$PALISADE_HOME/env.sh"
else
  VARIANT="$PALISADE_HOME/torch-$TORCH_VERSION"
  [ -n "$TORCH_FROM" ] && VARIANT="$VARIANT-$(command -v "$TORCH_FROM" | sha256sum | cut -c1-8)"
  SRC="$VARIANT/src" ENV_FILE="$VARIANT/env.sh"
  mkdir -p "$VARIANT"
fi

# Debian packages for the -sys crates (mpi needs libclang + OpenMPI; the loader's scaled JPEG
# decoding links libjpeg-turbo) and the test oracles; chromium renders `palisade report`'s HTML
# page headless in tests/e2e/report.rs; patchelf and debootstrap serve scripts/bundle*.sh.
APT_PKGS=(libopenmpi-dev openmpi-bin libclang-dev pkg-config libjpeg62-turbo-dev chromium patchelf debootstrap)
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

if [ -n "$TORCH_FROM" ]; then
  # Someone else's PyTorch: used as it is, nothing installed into it. torch-sys asks the
  # `python3` on PATH, so that name runs this python inside the variant: a wrapper, not a
  # symlink, which would lose a venv's site-packages.
  PYTHON="$(command -v "$TORCH_FROM")" VENV=""
  mkdir -p "$VARIANT/bin"
  for name in python3 python; do
    printf '#!/bin/sh\nexec "%s" "$@"\n' "$PYTHON" > "$VARIANT/bin/$name"
    chmod +x "$VARIANT/bin/$name"
  done
  PATH_DIR="$VARIANT/bin"
else
  # The pinned PyTorch (tch links its libtorch) plus the oracles used by tests; a constraints
  # file keeps transformers & co. from moving torch.
  VENV="$PALISADE_HOME/venv-torch$TORCH_VERSION"
  REQS="$ROOT/scripts/requirements-oracle.txt"
  want="torch==$TORCH_VERSION $(sha256sum "$REQS" | cut -c1-16)"
  stamp="$STAMP_DIR/venv"; [ "$TORCH_VERSION" = "$DEFAULT_TORCH" ] || stamp="$STAMP_DIR/venv-$TORCH_VERSION"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV (PyTorch $TORCH_VERSION; first time takes minutes)"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    echo "torch==$TORCH_VERSION" > "$VENV/constraints.txt"
    "$VENV/bin/pip" install -q "torch==$TORCH_VERSION"
    "$VENV/bin/pip" install -q -c "$VENV/constraints.txt" -r "$REQS"
    got=$("$VENV/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])')
    [ "$got" = "$TORCH_VERSION" ] || { log "torch is $got, expected $TORCH_VERSION"; exit 1; }
    echo "$want" > "$stamp"
  fi
  PYTHON="$VENV/bin/python" PATH_DIR="$VENV/bin"
fi

# Environment for tch's build script and for running: written once, sourced by the wrappers.
TORCH_LIB=$("$PYTHON" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
{
  echo "export LIBTORCH_USE_PYTORCH=1"
  echo "export LIBTORCH_BYPASS_VERSION_CHECK=\${LIBTORCH_BYPASS_VERSION_CHECK:-0}"
  echo "export PATH=\"$PATH_DIR:\$PATH\""
  [ -n "$VENV" ] && echo "export VIRTUAL_ENV=\"$VENV\""
  echo "export PALISADE_PYTHON=\"$PYTHON\""
  echo "export PALISADE_TORCH_LIB=\"$TORCH_LIB\""
  echo "export PALISADE_TORCH_VERSION=$TORCH_VERSION"
  echo "export PALISADE_SRC=\"$SRC\""
  echo "export LD_LIBRARY_PATH=\"$TORCH_LIB\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
  echo "export OMPI_ALLOW_RUN_AS_ROOT=1"
  echo "export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"
  [ -n "$VARIANT" ] && echo "export CARGO_TARGET_DIR=\"$VARIANT/target\""
} > "$ENV_FILE.tmp"
mv "$ENV_FILE.tmp" "$ENV_FILE"

# The generated source: this checkout's files with the manifest naming this PyTorch's tch;
# only changed files are rewritten, so cargo rebuilds what changed. The lockfile is main's:
# cargo moves tch and torch-sys (only) to this PyTorch's release.
[ -z "$VARIANT" ] || python3 "$ROOT/scripts/variant_source.py" "$ROOT" "$SRC" "$TCH"

# Build the CLI (incremental; seconds when nothing changed). The rpath to libtorch comes from
# PALISADE_TORCH_LIB, so the binary runs without LD_LIBRARY_PATH.
if [ "${PALISADE_SKIP_BUILD:-0}" != 1 ]; then
  # shellcheck disable=SC1090
  source "$ENV_FILE"
  [ -n "$VARIANT" ] && log "building for PyTorch $TORCH_VERSION (tch $TCH) in $VARIANT"
  profile=(); [ "$RELEASE" = 1 ] && profile=(--release)
  cargo build -q "${profile[@]}" --manifest-path "$SRC/Cargo.toml" -p palisade-cli
fi
[ "$PRINT_ENV" = 0 ] || echo "$ENV_FILE"
