"""Prints the ANLS of each (prediction, answers) pair with the `anls` package (a port of the
Robust Reading Competition's DocVQA / InfographicVQA scoring script), threshold 0.5.

Input: [{"prediction": str, "answers": [str, ...]}, ...]. Output: [score, ...] as JSON.

Usage: python anls_reference.py INPUT.json
Numbers are printed as repr strings, which round-trip exactly.
"""
import json
import sys

from anls import anls_score


def exact(o):
    """Floats as their repr strings: a JSON reader need not round-trip floats exactly."""
    if isinstance(o, float):
        return repr(o)
    if isinstance(o, dict):
        return {k: exact(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [exact(v) for v in o]
    return o


def main(path):
    with open(path) as f:
        examples = json.load(f)
    scores = [anls_score(e["prediction"], e["answers"], threshold=0.5) for e in examples]
    print(json.dumps(exact(scores)))


if __name__ == "__main__":
    main(sys.argv[1])
