#!/usr/bin/env bash
# A self-contained palisade for machines that cannot build it: a release, stripped binary built
# against the PyTorch release given, the shared libraries it needs that a PyTorch install does
# not bring (OpenMPI's, libjpeg-turbo's, ...), a launcher that finds libtorch in the machine's
# own PyTorch (bundle/palisade), the configs, the PyTorch baselines and gpu_check.sh.
#
#   scripts/bundle.sh --torch 2.11 --out dist/palisade-torch2.11
#   dist/palisade-torch2.11/palisade train dist/palisade-torch2.11/configs/demo/siglip_shapes.yaml
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TORCH=2.13 OUT="" MAX_MIB=60
die() { echo "[bundle] error: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --torch) TORCH="${2:?}"; shift 2 ;;
    --out) OUT="${2:?}"; shift 2 ;;
    *) die "unknown argument $1 (usage: scripts/bundle.sh --torch 2.11|2.13 --out DIR)" ;;
  esac
done
[ -n "$OUT" ] || die "--out DIR is required"

ENV_FILE=$(bash "$ROOT/scripts/setup.sh" --torch "$TORCH" --release --print-env)
# shellcheck disable=SC1090
source "$ENV_FILE"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/palisade"
[ -x "$BIN" ] || die "no release binary at $BIN"

# Everything is assembled beside the destination and moved into place at the end.
STAGE="$OUT.partial"
rm -rf "$STAGE" && mkdir -p "$STAGE/bin" "$STAGE/lib"
cp "$BIN" "$STAGE/bin/palisade"
strip --strip-all "$STAGE/bin/palisade"
# The build machine's libtorch folder is no use elsewhere: libraries come from lib/ beside the
# binary, libtorch from the launcher's LD_LIBRARY_PATH.
patchelf --set-rpath '$ORIGIN/../lib' "$STAGE/bin/palisade"

# The libraries ldd resolves outside the PyTorch install (libtorch, its CUDA wheels) and the C
# and C++ runtimes every Linux machine has.
SITE="$(cd "$PALISADE_TORCH_LIB/../.." && pwd)"
system='^(libc|libm|libdl|libpthread|librt|libutil|ld-linux-x86-64|libstdc\+\+|libgcc_s)\.so'
LD_LIBRARY_PATH="$PALISADE_TORCH_LIB" ldd "$BIN" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' |
  while read -r name path; do
    real="$(readlink -f "$path")"
    case "$real" in "$SITE"/*) continue ;; esac
    [[ "$name" =~ $system ]] && continue
    cp -L "$path" "$STAGE/lib/$name"
  done
LD_LIBRARY_PATH="$PALISADE_TORCH_LIB" ldd "$BIN" | grep -q "not found" && die "ldd finds unresolved libraries: $(ldd "$BIN" | grep 'not found')"

echo "$PALISADE_TORCH_VERSION" > "$STAGE/TORCH_VERSION"
# The newest glibc symbol version the binary and its bundled libraries ask for: the oldest
# glibc the bundle runs on (the launcher checks it; libstdc++ and glibc come from the machine).
command -v objdump >/dev/null || die "objdump (binutils) is needed to find the bundle's glibc floor"
{ objdump -T "$STAGE/bin/palisade" "$STAGE"/lib/*.so* 2>/dev/null || true; } | grep -o 'GLIBC_[0-9.]*' |
  sed 's/GLIBC_//' | sort -t. -k1,1n -k2,2n | tail -1 > "$STAGE/GLIBC"
[ -s "$STAGE/GLIBC" ] || die "found no glibc symbol versions in the bundle's binary"
cp "$ROOT/scripts/bundle/palisade" "$STAGE/palisade"
cp "$ROOT/scripts/gpu_check.sh" "$STAGE/gpu_check.sh"
mkdir -p "$STAGE/benchmarks"
cp "$ROOT"/benchmarks/{torch_device,siglip_train_step,pali_train_step,t5_decode,gpu_table}.py "$STAGE/benchmarks/"
cp -r "$ROOT/configs" "$STAGE/configs"
git -C "$ROOT" rev-parse HEAD > "$STAGE/COMMIT" 2>/dev/null || echo unknown > "$STAGE/COMMIT"

bytes=$(du -sb "$STAGE" | cut -f1)
mib=$(( (bytes + 1048575) / 1048576 ))
[ "$mib" -le "$MAX_MIB" ] || die "the bundle is $mib MiB, over the $MAX_MIB MiB limit: $(du -sh "$STAGE"/bin "$STAGE"/lib | tr '\n' ' ')"
rm -rf "$OUT" && mv "$STAGE" "$OUT"
echo "[bundle] $OUT: palisade for PyTorch $PALISADE_TORCH_VERSION, $mib MiB ($(ls "$OUT/lib" | wc -l) bundled libraries: $(ls "$OUT/lib" | tr '\n' ' '))" >&2
