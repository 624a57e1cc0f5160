"""Runs the official VQA accuracy code (vqa_eval_lavis.py, vendored here) on VQA-format files
and prints its results as JSON.

Output: {"reported": R, "exact": E}. R is what VQAEval(n=2) reports: {"accuracy": {"overall",
"perQuestionType", "perAnswerType"}, "evalQA": {question_id: accuracy}}, percentages rounded
to 2 decimals. E is the same with n=400, where Python's round returns its argument unchanged,
i.e. the unrounded values.

Usage: python vqa_official.py ANNOTATIONS.json QUESTIONS.json RESULTS.json
Numbers are printed as repr strings, which round-trip exactly.
"""
import contextlib
import io
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vqa_eval_lavis import VQAEval  # noqa: E402


class VQA:
    """The parts of the VQA API (vqaTools/vqa.py) that VQAEval uses: the question-id index of
    the annotations and loadRes, with its check that results cover exactly the annotated
    questions."""

    def __init__(self, annotation_file, question_file):
        with open(annotation_file) as f:
            self.dataset = json.load(f)
        with open(question_file) as f:
            self.questions = json.load(f)
        self.qa = {ann["question_id"]: ann for ann in self.dataset["annotations"]}

    def getQuesIds(self):
        return [ann["question_id"] for ann in self.dataset["annotations"]]

    def loadRes(self, res_file):
        with open(res_file) as f:
            anns = json.load(f)
        assert set(a["question_id"] for a in anns) == set(self.getQuesIds()), (
            "Results do not correspond to current VQA set."
        )
        for ann in anns:
            qa = self.qa[ann["question_id"]]
            ann["image_id"] = qa["image_id"]
            ann["question_type"] = qa["question_type"]
            ann["answer_type"] = qa["answer_type"]
        res = VQA.__new__(VQA)
        res.dataset = {"annotations": anns}
        res.questions = self.questions
        res.qa = {ann["question_id"]: ann for ann in anns}
        return res


def exact(o):
    """Floats as their repr strings: a JSON reader need not round-trip floats exactly."""
    if isinstance(o, float):
        return repr(o)
    if isinstance(o, dict):
        return {k: exact(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [exact(v) for v in o]
    return o


def run(annotations, questions, results, n):
    # Fresh objects each time: evaluate() rewrites the ground-truth answers in place.
    vqa = VQA(annotations, questions)
    res = vqa.loadRes(results)
    ev = VQAEval(vqa, res, n=n)
    with contextlib.redirect_stdout(io.StringIO()):  # progress bar
        ev.evaluate()
    return {"accuracy": ev.accuracy, "evalQA": {str(k): v for k, v in ev.evalQA.items()}}


def main(annotations, questions, results):
    out = {
        "reported": run(annotations, questions, results, 2),
        "exact": run(annotations, questions, results, 400),
    }
    print(json.dumps(exact(out)))


if __name__ == "__main__":
    main(*sys.argv[1:4])
