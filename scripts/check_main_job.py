#!/usr/bin/env python3
"""Checks what the main job shows, from its report/eval.json: retrieval far above chance both
ways at every K and at most its ceiling (an expected value, so a little slack), and zero-shot
accuracy far above chance on every task. Usage:
check_main_job.py RUN_DIR/report/eval.json"""
import json
import sys

RECALL_OVER_CHANCE = 20  # measured: R@1 ~100x chance, R@10 ~30x
CEILING_SLACK = 0.02  # measured: text->image R@1 29.7% at a 29.5% ceiling (an expectation)
ZERO_SHOT_OVER_CHANCE = 3  # measured: shape 96.7% (chance 25%), colour 99.8% (16.7%)

report = json.load(open(sys.argv[1]))
problems = []
if not report["retrieval"]:
    problems.append("no retrieval results")
for r in report["retrieval"]:
    if r["recall"] < RECALL_OVER_CHANCE * r["chance"]:
        problems.append(f"{r['direction']} R@{r['k']} {r['recall']:.4f} is not {RECALL_OVER_CHANCE}x chance {r['chance']:.4f}")
    if "ceiling" not in r:
        problems.append(f"{r['direction']} R@{r['k']}: no ceiling for the synthetic scenes")
    elif r["recall"] > r["ceiling"] + CEILING_SLACK:
        problems.append(f"{r['direction']} R@{r['k']} {r['recall']:.4f} is above its ceiling {r['ceiling']:.4f}: the ceiling is wrong")
if not report["zero_shot"]:
    problems.append("no zero-shot results")
for z in report["zero_shot"]:
    if z["accuracy"] < ZERO_SHOT_OVER_CHANCE * z["chance"]:
        problems.append(f"zero-shot {z['name']} {z['accuracy']:.4f} is not {ZERO_SHOT_OVER_CHANCE}x chance {z['chance']:.4f}")
for p in problems:
    print(f"main job: {p}", file=sys.stderr)
if problems:
    sys.exit(1)
best = max(report["retrieval"], key=lambda r: r["recall"] / r["chance"])
print(f"main job: {len(report['retrieval'])} recalls and {len(report['zero_shot'])} zero-shot accuracies far above chance "
      f"(e.g. {best['direction']} R@{best['k']} {100 * best['recall']:.1f}% vs {100 * best['chance']:.2f}%)")
