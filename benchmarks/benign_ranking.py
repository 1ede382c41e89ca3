"""What limits the benign specificity at 99 % malignant sensitivity: the models' variance, or the fields?

Usage: python benchmarks/benign_ranking.py runs/gelu0/eval/predictions.csv runs/gelu1/eval/predictions.csv ...

Each file is one model's `leukoscope evaluate` output on the same images. Printed for each model and
for their ensemble (the geometric mean of the class probabilities, renormalised) over the images every
model read: 4-class accuracy (the most probable class) with its 95 % interval, the benign-vs-malignant
AUROC of p(Benign), the error on benign vs malignant of the calls kept when the 15 % least confident
fields by that ranking are set aside, and the benign specificity that the ranking by
p(Benign) allows at 99 % malignant sensitivity, over all fields and over the fields with at least
6 and 10 leukocytes (the `cells` column). Then the malignant fields ranked most benign by the
ensemble. It asks whether the seed-to-seed spread hides a better model, without training one, and
whether the fields that set the cut are those with little to judge.
"""

from __future__ import annotations

import argparse
import csv

import numpy as np
from sklearn.metrics import roc_auc_score

from leukoscope.scoring.intervals import wilson
from leukoscope.scoring.screening import specificity_at_sensitivity

BENIGN = "Benign"
MIN_CELLS = (1, 6, 10)
FLAGGED = 0.15  # the share of fields set aside, least confident first, for the error of the calls kept


def read(path: str) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        return {row["path"]: row for row in csv.DictReader(f) if row["status"] == "ok"}


def line(name: str, probs: np.ndarray, y: np.ndarray, cells: np.ndarray, classes: list[str]) -> str:
    right = int((probs.argmax(1) == y).sum())
    low, high = wilson(right, len(y))
    benign = classes.index(BENIGN)
    specs = []
    for least in MIN_CELLS:
        kept = cells >= least
        spec = specificity_at_sensitivity(probs[kept, benign], y[kept] != benign, 0.99)
        specs.append("-" if spec is None else f"{100 * spec:.0f} %")
    malignant, p_benign = y != benign, probs[:, benign]
    kept = np.argsort(-np.maximum(p_benign, 1 - p_benign), kind="stable")[: len(y) - int(FLAGGED * len(y))]
    error = ((p_benign[kept] < 0.5) != malignant[kept]).mean()
    return (
        f"  {name:40} 4-class {100 * right / len(y):5.1f} % ({100 * low:.1f}-{100 * high:.1f})  AUROC {roc_auc_score(malignant, -p_benign):.3f}  "
        f"error with {100 * FLAGGED:.0f} % flagged {100 * error:.2f} %  specificity at 99 % sensitivity {' / '.join(specs)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("predictions", nargs="+", help="predictions.csv of each model, on the same images")
    args = parser.parse_args()
    models = [read(p) for p in args.predictions]
    paths = sorted(set.intersection(*(set(m) for m in models)))
    classes = [c.removeprefix("p_") for c in next(iter(models[0].values())) if c.startswith("p_")]
    y = np.array([classes.index(models[0][p]["true"]) for p in paths])
    cells = np.array([int(models[0][p]["cells"]) for p in paths])
    probs = np.stack([[[float(m[p][f"p_{c}"]) for c in classes] for p in paths] for m in models])
    shares = " / ".join(f"{int((cells >= least).sum())}" for least in MIN_CELLS)
    print(f"{len(paths)} images read by all {len(models)} models; fields with at least {' / '.join(map(str, MIN_CELLS))} leukocytes: {shares}")
    for name, p in zip(args.predictions, probs):
        print(line(name, p, y, cells, classes))
    mean = np.exp(np.log(np.clip(probs, 1e-12, 1)).mean(0))
    mean /= mean.sum(1, keepdims=True)
    print(line(f"ensemble of {len(models)}", mean, y, cells, classes))
    benign = classes.index(BENIGN)
    malignant = np.flatnonzero(y != benign)
    worst = malignant[np.argsort(-mean[malignant, benign])[:8]]
    print("malignant fields the ensemble ranks most benign (p(Benign), leukocytes):")
    print("  " + ", ".join(f"{paths[i].rsplit('/', 1)[-1]} ({mean[i, benign]:.2f}, {cells[i]})" for i in worst))


if __name__ == "__main__":
    main()
