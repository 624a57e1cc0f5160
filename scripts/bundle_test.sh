#!/usr/bin/env bash
# The bundle's clean-environment test: a minimal Debian (debootstrap) holding only python3 and a
# venv with torch==VERSION — no Rust, no OpenMPI, no libjpeg — entered with chroot and `env -i`.
# There the bundle must train the SigLIP demo (passing scripts/check_main_job.py), run a 2-rank
# `palisade launch` over TCP and gpu_check.sh's CPU side, and refuse a libtorch of another
# PyTorch release and a missing NCCL by name. Needs root (chroot, mounts); the root file system and venv are cached.
#
#   scripts/bundle.sh --torch 2.11 --out dist/palisade-torch2.11
#   scripts/bundle_test.sh dist/palisade-torch2.11
set -euo pipefail
BUNDLE="$(cd "${1:?usage: scripts/bundle_test.sh BUNDLE_DIR}" && pwd)"
SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TORCH="$(cat "$BUNDLE/TORCH_VERSION")"
PALISADE_HOME="${PALISADE_HOME:-$HOME/.cache/palisade}"
R="$PALISADE_HOME/cleanroot-bookworm"
log() { echo "[bundle-test] $*" >&2; }
fail() { echo "[bundle-test] FAIL: $*" >&2; exit 1; }

if [ ! -x "$R/usr/bin/python3" ]; then
  log "debootstrap bookworm (minbase + python3) into $R"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$R" http://deb.debian.org/debian >/dev/null
fi
mounts=()
bind() { mkdir -p "$R$2"; mount --rbind "$1" "$R$2"; mounts=("$R$2" "${mounts[@]}"); }
cleanup() { for m in "${mounts[@]}"; do umount -l "$m" 2>/dev/null || true; done; }
trap cleanup EXIT
mount -t proc proc "$R/proc" && mounts=("$R/proc")
bind /dev /dev
mkdir -p "$HOME/.cache/pip" && bind "$HOME/.cache/pip" /root/.cache/pip   # wheels, kept for reruns
# The host's name servers and certificate authorities (a TLS-inspecting proxy's among them).
cp /etc/resolv.conf "$R/etc/resolv.conf"
cp /etc/ssl/certs/ca-certificates.crt "$R/etc/ssl/certs/ca-certificates.crt"
# In the chroot: nothing but what `env -i` passes.
inside() { chroot "$R" /usr/bin/env -i HOME=/root PATH=/venv/bin:/usr/bin:/bin "$@"; }

if [ "$(cat "$R/venv/STAMP" 2>/dev/null)" != "torch==$TORCH" ]; then
  log "venv with only torch==$TORCH"
  rm -rf "$R/venv"
  inside python3 -m venv /venv
  inside PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DEFAULT_TIMEOUT=180 /venv/bin/pip install -q "torch==$TORCH"
  echo "torch==$TORCH" > "$R/venv/STAMP"
fi

# The environment is what the test claims: no OpenMPI, libjpeg or Rust anywhere it can see.
inside /bin/sh -c '/sbin/ldconfig -p | grep -E "libmpi|libjpeg|libopen-pal|libhwloc"' && fail "the clean root has system OpenMPI or libjpeg"
inside /bin/sh -c 'command -v cargo rustc mpirun' && fail "the clean root has Rust or mpirun"
inside /venv/bin/pip list --format=freeze | grep -viE '^(torch|nvidia-|triton|cuda-|sympy|mpmath|networkx|jinja2|MarkupSafe|filelock|fsspec|typing_extensions|setuptools|pip)' | grep . &&
  fail "the venv holds more than torch and its requirements"

rm -rf "$R/opt/palisade" "$R/work" && mkdir -p "$R/work"
cp -a "$BUNDLE" "$R/opt/palisade"
P=/opt/palisade/palisade
cd "$R/work"

log "doctor"
inside /bin/sh -c "cd /work && $P doctor" | tee doctor.txt
grep -q "built for PyTorch $TORCH" doctor.txt || fail "doctor does not say PyTorch $TORCH"
grep -q "libtorch  PyTorch $TORCH in /venv/" doctor.txt || fail "the bundle did not find the venv's libtorch"

log "the SigLIP demo, as the README's main job runs it, and what it shows"
inside /bin/sh -c "cd /work && $P train /opt/palisade/configs/demo/siglip_shapes.yaml --run-dir /work/runs/demo \
  --no-progress" 2> train.log || { tail -20 train.log; fail "the demo did not train"; }
python3 "$SCRIPTS/check_main_job.py" runs/demo/report/eval.json || fail "the demo's report is not the main job's"

log "2 ranks under palisade launch (TCP)"
inside /bin/sh -c "cd /work && $P launch --nproc-per-node 2 -- train /opt/palisade/configs/demo/siglip_shapes.yaml \
  --set train.steps=40 --set train.warmup_steps=10 --set train.eval_every=0 --run-dir /work/runs/launch --no-progress" 2> launch.log ||
  { tail -20 launch.log; fail "palisade launch failed"; }
grep -q "2 ranks over the tcp backend" launch.log || { tail -20 launch.log; fail "launch.log does not show the TCP backend"; }
grep -q '"world_size": *2' runs/launch/checkpoints/*/state.json 2>/dev/null || grep -rq '"world_size":2' runs/launch/checkpoints/ ||
  fail "the launched run's checkpoint is not from 2 ranks"

log "another PyTorch's libtorch is refused with both versions"
fake="$R/work/faketorch/torch"
mkdir -p "$fake/lib" && cp -P "$R"/venv/lib/python3*/site-packages/torch/lib/libtorch_cpu.so "$fake/lib/"
echo "__version__ = '2.99.0+cpu'" > "$fake/version.py"
if inside /bin/sh -c "PALISADE_TORCH_LIB=/work/faketorch/torch/lib $P doctor" 2> mismatch.log; then fail "a 2.99 libtorch was accepted"; fi
grep -q "built for PyTorch $TORCH" mismatch.log && grep -q "2.99.0" mismatch.log || { cat mismatch.log; fail "the refusal does not name both versions"; }

log "the binary itself refuses another release's libtorch (run without the launcher)"
# The venv's libraries under a PyTorch that says it is 2.99: hard links and a version.py of its
# own, with the CUDA wheels libtorch finds at ../../nvidia linked in (as the chroot sees them).
site="$(echo "$R"/venv/lib/python3*/site-packages)"
fake2="$R/work/fake299"
mkdir -p "$fake2" && cp -al "$site/torch" "$fake2/torch" && rm "$fake2/torch/version.py"
ln -s "${site#"$R"}/nvidia" "$fake2/nvidia"
echo "__version__ = '2.99.0+cpu'" > "$fake2/torch/version.py"
if inside /bin/sh -c "LD_LIBRARY_PATH=/opt/palisade/lib:/work/fake299/torch/lib /opt/palisade/bin/palisade data inspect /work" 2> binary.log; then
  fail "the binary ran on a libtorch claiming 2.99"
fi
grep -q "built for PyTorch $TORCH but loaded the libtorch of PyTorch 2.99.0 from /work/fake299/torch/lib" binary.log || { cat binary.log; fail "the binary's refusal does not name both versions"; }

log "an older glibc than the bundle needs is refused"
old="$R/opt/palisade-oldglibc" && rm -rf "$old" && cp -a "$R/opt/palisade" "$old" && echo 9.99 > "$old/GLIBC"
if inside /opt/palisade-oldglibc/palisade doctor 2> glibc.log; then fail "a bundle needing glibc 9.99 started"; fi
grep -q "needs glibc 9.99 or newer" glibc.log || { cat glibc.log; fail "the glibc refusal is unclear"; }
rm -rf "$old"

log "a missing NCCL names where it looked"
# The venv's PyTorch with its nvidia-nccl package taken away: hard links, so that the loaded
# paths stay under the fake tree, and the other CUDA wheels linked in as they are.
site=$(echo "$R"/venv/lib/python3*/site-packages)
nonccl="$R/work/nonccl"
mkdir -p "$nonccl/nvidia" && cp -al "$site/torch" "$nonccl/torch"
# (links to the CUDA wheels as the chroot sees them, all but nvidia/nccl)
for d in "$site"/nvidia/*; do [ "$(basename "$d")" = nccl ] || ln -s "${d#"$R"}" "$nonccl/nvidia/"; done
if inside /bin/sh -c "PALISADE_TORCH_LIB=/work/nonccl/torch/lib $P doctor" 2> nccl.log; then fail "a CUDA libtorch without NCCL was started"; fi
grep -q "/work/nonccl/nvidia/nccl/lib/libnccl.so.2" nccl.log || { cat nccl.log; fail "the NCCL error does not name where it looked"; }
inside /bin/sh -c "PALISADE_NCCL_LIB=/nonexistent/libnccl.so.2 $P doctor" 2> nccl2.log && fail "a missing PALISADE_NCCL_LIB was accepted"
grep -q "/nonexistent/libnccl.so.2" nccl2.log || { cat nccl2.log; fail "the missing PALISADE_NCCL_LIB is not named"; }

log "gpu_check.sh from the bundle (CPU side; no transformers here, so the PyTorch rows skip)"
inside /bin/sh -c "cd /work && GPU_CHECK_OUT=/work/gpu_check /opt/palisade/gpu_check.sh" > gpu_check.txt 2> gpu_check.log ||
  { cat gpu_check.txt; tail -20 gpu_check.log; fail "gpu_check.sh failed"; }
cat gpu_check.txt
grep -q "no GPU" gpu_check.txt || fail "gpu_check.sh did not say no GPU"
grep -q "SigLIP B/16 train step" gpu_check.txt || fail "no SigLIP row"
log "PASS: the PyTorch $TORCH bundle works in a clean environment"
