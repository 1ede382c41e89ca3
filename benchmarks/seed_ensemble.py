"""What averaging several models' calls would give: the mean log-probability over predictions.csv files.

Usage: python benchmarks/seed_ensemble.py runs/gelu0/eval/predictions.csv runs/gelu1/eval/predictions.csv ...

Each file is one model's `leukoscope evaluate` output on the same images. Printed for each model and
for their ensemble (the geometric mean of the class probabilities, renormalised) over the images every
model read: 4-class accuracy with its 95 % interval, and the benign specificity that the ranking by
p(Benign) allows at 99 % malignant sensitivity. It asks whether the seed-to-seed spread hides a
better model, without training one.
"""

from __future__ import annotations

import argparse
import csv

import numpy as np

from leukoscope.scoring.intervals import wilson
from leukoscope.scoring.screening import specificity_at_sensitivity

BENIGN = "Benign"


def read(path: str) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        return {row["path"]: row for row in csv.DictReader(f) if row["status"] == "ok"}


def line(name: str, probs: np.ndarray, y: np.ndarray, classes: list[str]) -> str:
    right = int((probs.argmax(1) == y).sum())
    low, high = wilson(right, len(y))
    spec = specificity_at_sensitivity(probs[:, classes.index(BENIGN)], y != classes.index(BENIGN), 0.99)
    spec_text = "-" if spec is None else f"{100 * spec:.0f} %"
    return f"  {name:40} 4-class {100 * right / len(y):5.1f} % ({100 * low:.1f}-{100 * high:.1f})  specificity at 99 % sensitivity {spec_text}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("predictions", nargs="+", help="predictions.csv of each model, on the same images")
    args = parser.parse_args()
    models = [read(p) for p in args.predictions]
    paths = sorted(set.intersection(*(set(m) for m in models)))
    classes = [c.removeprefix("p_") for c in next(iter(models[0].values())) if c.startswith("p_")]
    y = np.array([classes.index(models[0][p]["true"]) for p in paths])
    probs = np.stack([[[float(m[p][f"p_{c}"]) for c in classes] for p in paths] for m in models])
    print(f"{len(paths)} images read by all {len(models)} models")
    for name, p in zip(args.predictions, probs):
        print(line(name, p, y, classes))
    mean = np.exp(np.log(np.clip(probs, 1e-12, 1)).mean(0))
    print(line(f"ensemble of {len(models)}", mean / mean.sum(1, keepdims=True), y, classes))


if __name__ == "__main__":
    main()
