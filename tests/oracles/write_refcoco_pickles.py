"""Writes RefCOCO-style refs as real Python pickles, the way the official refs(*).p files exist:
protocol 0 with Python 2 byte strings (as the refer toolkit's Python 2 wrote them), and protocols
2 and 5 from Python 3. Checks each file loads back equal to the input before exiting.

Usage: python write_refcoco_pickles.py REFS.json OUT_DIR
Writes OUT_DIR/refs_py2.p, refs_p2.p, refs_p5.p and prints their names as a JSON list.
"""
import json
import pickle
import sys
from pathlib import Path


def py2_protocol0(obj) -> bytes:
    """What Python 2's pickle.dump(obj, f) (protocol 0) writes for lists, dicts, ints, strings.

    Python 2 keeps text as byte strings: a str that fits Latin-1 is written with the STRING
    opcode (S'...'), as Python 2 would hold those bytes; anything else as a unicode object (V).
    """
    out = []
    memo = [0]

    def put():
        memo[0] += 1
        out.append(f"p{memo[0]}\n".encode())

    def emit(o):
        if isinstance(o, bool) or o is None:
            raise TypeError("not used by refs")
        if isinstance(o, int):
            out.append(f"I{o}\n".encode())
        elif isinstance(o, float):
            out.append(f"F{o!r}\n".encode())
        elif isinstance(o, str):
            try:
                raw = o.encode("latin-1")
            except UnicodeEncodeError:
                esc = o.replace("\\", "\\u005c").replace("\n", "\\u000a")
                out.append(b"V" + esc.encode("raw-unicode-escape") + b"\n")
            else:
                # Python 2's repr of a byte string: b'...' without the b.
                out.append(b"S" + repr(raw)[1:].encode("ascii") + b"\n")
            put()
        elif isinstance(o, list):
            out.append(b"(l")
            put()
            for item in o:
                emit(item)
                out.append(b"a")
        elif isinstance(o, dict):
            out.append(b"(d")
            put()
            for k, v in o.items():
                emit(k)
                emit(v)
                out.append(b"s")
        else:
            raise TypeError(type(o))

    emit(obj)
    out.append(b".")
    return b"".join(out)


def main(refs_json: str, out_dir: str) -> None:
    refs = json.loads(Path(refs_json).read_text(encoding="utf-8"))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "refs_py2.p": py2_protocol0(refs),
        "refs_p2.p": pickle.dumps(refs, protocol=2),
        "refs_p5.p": pickle.dumps(refs, protocol=5),
    }
    for name, data in files.items():
        (out / name).write_bytes(data)
        # The refer toolkit under Python 3 reads Python 2 pickles with encoding="latin1".
        back = pickle.loads((out / name).read_bytes(), encoding="latin1")
        assert back == refs, f"{name} does not load back equal"
    assert b"S'" in files["refs_py2.p"], "the Python 2 file must hold byte strings"
    print(json.dumps(sorted(files)))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
