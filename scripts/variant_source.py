#!/usr/bin/env python3
"""Keeps the generated source of a build for another PyTorch (scripts/setup.sh) in step with
the checkout: the checkout's files (tracked and untracked, not ignored) with the manifest's tch
requirement replaced. Only files whose content differs are written, so their times are new and
cargo rebuilds exactly what changed; files gone from the checkout are removed.

Usage: variant_source.py CHECKOUT DEST TCH_VERSION
"""
import hashlib
import os
import re
import subprocess
import sys


def checkout_files(root):
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "-z", "-co", "--exclude-standard"],
                             capture_output=True, check=True).stdout.decode()
        names = out.split("\0")
    except (OSError, subprocess.CalledProcessError):
        names = []
        for d, subdirs, files in os.walk(root):
            subdirs[:] = [s for s in subdirs if not (d == root and s in (".git", "target", "runs"))]
            names += [os.path.relpath(os.path.join(d, f), root) for f in files]
    return {n for n in names if n and os.path.isfile(os.path.join(root, n))}


def main():
    root, dest, tch = sys.argv[1:4]
    files = checkout_files(root)
    if "Cargo.toml" not in files:
        sys.exit(f"{root}: no Cargo.toml")
    # The variant's lockfile is main's with tch and torch-sys moved by cargo: copied again only
    # when main's changes, so that a rerun needs neither the registry nor a re-resolution.
    stamp = dest.rstrip("/") + ".lock-from"
    with open(os.path.join(root, "Cargo.lock"), "rb") as f:
        main_lock = f.read()
    digest = hashlib.sha256(main_lock).hexdigest()
    try:
        with open(stamp) as f:
            keep_lock = f.read().strip() == digest and os.path.exists(os.path.join(dest, "Cargo.lock"))
    except OSError:
        keep_lock = False
    written = 0
    for name in sorted(files):
        if name == "Cargo.lock" and keep_lock:
            continue
        with open(os.path.join(root, name), "rb") as f:
            data = f.read()
        if name == "Cargo.toml":
            data, n = re.subn(rb'(?m)^tch = "[^"]*"', f'tch = "={tch}"'.encode(), data)
            if n != 1:
                sys.exit(f"{root}/Cargo.toml: no `tch = \"...\"` line to replace")
        path = os.path.join(dest, name)
        try:
            with open(path, "rb") as f:
                if f.read() == data:
                    continue
        except OSError:
            pass
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.chmod(path + ".tmp", os.stat(os.path.join(root, name)).st_mode & 0o777)
        os.replace(path + ".tmp", path)
        written += 1
    removed = 0
    for d, _, names in os.walk(dest):
        for n in names:
            rel = os.path.relpath(os.path.join(d, n), dest)
            if rel not in files:
                os.remove(os.path.join(d, n))
                removed += 1
    with open(stamp, "w") as f:
        f.write(digest + "\n")
    print(f"[setup] {dest}: {written} files written, {removed} removed, tch ={tch}", file=sys.stderr)


if __name__ == "__main__":
    main()
