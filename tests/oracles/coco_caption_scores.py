"""Scores captions with pycocoevalcap's Bleu(4), Rouge and Cider and prints the results as JSON.

Input: {"datasets": [{"gts": {image_id: [reference, ...]}, "res": {image_id: [candidate]}},
...]}, captions already tokenized (tokens separated by spaces) as the scorers take them. With
--tokenize the captions are raw and first go through pycocoevalcap's PTBTokenizer (Stanford
CoreNLP 3.4.1, needs `java`), references and candidates in one run each, as
COCOEvalCap.evaluate does.

Output: one object per dataset: bleu (corpus BLEU-1..4), bleu_per_image (4 lists), rouge,
rouge_per_image, cider, cider_per_image (per-image lists in the order of gts), and with
--tokenize the tokenized gts and res.

Usage: python coco_caption_scores.py [--tokenize] INPUT.json
Numbers are printed as repr strings, which round-trip exactly.
"""
import contextlib
import io
import json
import sys

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge


def exact(o):
    """Floats as their repr strings: a JSON reader need not round-trip floats exactly."""
    if isinstance(o, float):
        return repr(o)
    if isinstance(o, dict):
        return {k: exact(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [exact(v) for v in o]
    return o


def tokenize(captions):
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    return PTBTokenizer().tokenize(
        {k: [{"caption": c} for c in v] for k, v in captions.items()}
    )


def score(gts, res):
    with contextlib.redirect_stdout(io.StringIO()):
        bleu, bleu_per_image = Bleu(4).compute_score(gts, res, verbose=0)
        rouge, rouge_per_image = Rouge().compute_score(gts, res)
        cider, cider_per_image = Cider().compute_score(gts, res)
    return {
        "bleu": [float(b) for b in bleu],
        "bleu_per_image": [[float(x) for x in per] for per in bleu_per_image],
        "rouge": float(rouge),
        "rouge_per_image": [float(x) for x in rouge_per_image],
        "cider": float(cider),
        "cider_per_image": [float(x) for x in cider_per_image],
    }


def main(args):
    do_tokenize = args[0] == "--tokenize"
    path = args[1] if do_tokenize else args[0]
    with open(path) as f:
        datasets = json.load(f)["datasets"]
    out = []
    for d in datasets:
        gts, res = d["gts"], d["res"]
        if do_tokenize:
            gts, res = tokenize(gts), tokenize(res)
        result = score(gts, res)
        if do_tokenize:
            result["gts"], result["res"] = gts, res
        out.append(result)
    print(json.dumps(exact(out)))


if __name__ == "__main__":
    main(sys.argv[1:])
