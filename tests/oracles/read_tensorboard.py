"""Loads a TensorBoard log folder with tensorboard's own EventAccumulator and prints its scalars
as JSON: {tag: [[step, value], ...]}.

Usage: python read_tensorboard.py LOGDIR
"""
import json
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main(logdir: str) -> None:
    acc = EventAccumulator(logdir, size_guidance={"scalars": 0})
    acc.Reload()
    out = {tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
