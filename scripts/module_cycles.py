#!/usr/bin/env python3
"""Fails when modules inside a crate import each other in a circle.

Each folder module (a crate's src/, or a folder such as loader/) is checked on its own: its
direct children are the nodes, and a child that names a sibling (`crate::a::b`, `super::b`,
`use b::…` from mod.rs) has an edge to it. A child's own files count as the child, so a
folder module and its submodules are one node one level up. Usage: module_cycles.py [CRATE_DIR…]
(default: every crate under crates/).
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def strip_comments(text):
    """`text` without comments, and with string and char literals emptied."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c == "r" and re.match(r'r#*"', text[i:]) and not re.match(r"\w", text[i - 1 : i] or " "):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            j = text.find('"' + hashes, i + 2 + len(hashes))
            out.append('""')
            i = n if j < 0 else j + 1 + len(hashes)
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""')
            i = j + 1
        elif c == "'" and re.match(r"'(\\.[^']*|[^\\'])'", text[i:]):
            i += re.match(r"'(\\.[^']*|[^\\'])'", text[i:]).end()
            out.append("' '")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def without_tests(text):
    """`text` without `#[cfg(test)]` items, and the names of test-only child module files."""
    test_files, out, i = [], [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]", text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        j = m.end()
        decl = re.match(r"\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text[j:])
        if decl:
            test_files.append(decl.group(1))
            i = j + decl.end()
            continue
        # Skip the item: to its first `;` at depth 0 or its balanced `{…}` block.
        depth = 0
        while j < len(text):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    j += 1
                    break
            elif text[j] == ";" and depth == 0:
                j += 1
                break
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out), test_files


def module_path(src, file):
    """The module path of `file` inside the crate whose source folder is `src`."""
    rel = file.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("lib", "main", "mod"):
        parts = parts[:-1]
    return parts


def expand(prefix, tree):
    """Paths named by a use-tree `tree` after `prefix::` (handles `{a, b::{c, d}}`)."""
    tree = tree.strip()
    if tree.startswith("{"):
        depth, item, out = 0, "", []
        for ch in tree[1:-1] + ",":
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                if item.strip():
                    out += expand(prefix, item)
                item = ""
            else:
                item += ch
        return out
    head, _, rest = tree.partition("::")
    head = head.split(" as ")[0].strip()
    if head in ("self", "*", ""):
        return [prefix]
    if rest:
        return expand(prefix + [head], rest)
    return [prefix + [head]]


def references(text, here, is_dir_module):
    """Absolute module paths that the file at module path `here` names."""
    refs = []
    # The module a relative `super::` starts from: a mod.rs / lib.rs is its own module.
    base = here if is_dir_module else here[:-1]
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        tree = m.group(1).strip()
        if tree.startswith("crate::"):
            refs += expand([], tree[len("crate::"):])
        elif tree.startswith("super::"):
            up, t = base[:], tree
            while t.startswith("super::"):
                up, t = up[:-1], t[len("super::"):]
            refs += expand(up, t)
        elif tree.startswith("self::"):
            refs += expand(here if is_dir_module else here, tree[len("self::"):])
        else:
            first = re.split(r"::|\{", tree)[0].strip()
            if is_dir_module and first and first not in ("std", "core", "alloc"):
                refs += [here + p for p in expand([], tree)]  # a child, or an extern crate
    for m in re.finditer(r"\bcrate((?:::\w+)+)", text):
        refs.append(m.group(1).strip(":").split("::"))
    for m in re.finditer(r"(?<![:\w])((?:super::)+)(\w+)", text):
        ups = m.group(1).count("super::")
        up = base[: len(base) - ups + 1] if ups else base
        up = base[: max(len(base) - ups, 0)] if not is_dir_module else here[: len(here) - ups]
        refs.append(up + [m.group(2)])
    return refs


def check_crate(crate):
    src = crate / "src"
    files = sorted(src.rglob("*.rs"))
    texts, test_only = {}, set()
    for f in files:
        text, tests = without_tests(strip_comments(f.read_text()))
        texts[f] = text
        folder = f.parent if f.name in ("mod.rs", "lib.rs", "main.rs") else f.with_suffix("")
        for t in tests:
            test_only.update({folder / f"{t}.rs", folder / t / "mod.rs"})
    files = [f for f in files if f not in test_only]
    mods = {tuple(module_path(src, f)) for f in files}
    # parent module → its children; edges child → sibling.
    edges = {}
    for f in files:
        here = module_path(src, f)
        is_dir = f.name in ("mod.rs", "lib.rs", "main.rs")
        for ref in references(texts[f], here, is_dir):
            # The longest known module prefix of the reference.
            while ref and tuple(ref) not in mods:
                ref = ref[:-1]
            if not ref:
                continue
            # The level where `here` and `ref` part: siblings under a common parent.
            common = 0
            while common < min(len(here), len(ref)) and here[common] == ref[common]:
                common += 1
            if common == len(here) or common == len(ref):
                continue  # an ancestor or a descendant, not a sibling
            a, b = tuple(here[: common + 1]), tuple(ref[: common + 1])
            edges.setdefault(a, set()).add(b)
    return find_cycles(edges)


def find_cycles(edges):
    cycles, seen = [], set()
    for start in sorted(edges):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(edges.get(node, ())):
                if nxt == start:
                    key = frozenset(path)
                    if key not in seen:
                        seen.add(key)
                        cycles.append(path + [start])
                elif nxt not in path and nxt > start:
                    stack.append((nxt, path + [nxt]))
    return cycles


def main():
    crates = [Path(a) for a in sys.argv[1:]] or sorted(p.parent for p in ROOT.glob("crates/*/Cargo.toml"))
    bad = False
    for crate in crates:
        for cycle in check_crate(crate):
            bad = True
            names = [("::".join(m) or "crate") for m in cycle]
            print(f"{crate.name}: modules import each other in a circle: {' -> '.join(names)}")
    if bad:
        sys.exit(1)
    print(f"no import circles in {len(crates)} crates")


if __name__ == "__main__":
    main()
