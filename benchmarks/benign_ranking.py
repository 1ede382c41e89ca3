"""What limits the benign specificity at 99 % malignant sensitivity: the models' variance, or the fields?

Usage: python benchmarks/benign_ranking.py runs/gelu0/eval/predictions.csv runs/gelu1/eval/predictions.csv ... [--subsets]

Each file is one model's `leukoscope evaluate` output on the same images. Printed for each model and
for their ensemble (the geometric mean of the class probabilities, renormalised) over the images every
model read: 4-class accuracy (the most probable class) with its 95 % interval, the benign-vs-malignant
AUROC of p(Benign), the error on benign vs malignant of the calls kept when the 15 % least confident
fields by that ranking are set aside, and the benign specificity that the ranking by
p(Benign) allows at 99 % malignant sensitivity, over all fields and over the fields with at least
6 and 10 leukocytes (the `cells` column). Then the malignant fields ranked most benign by the
ensemble. It asks whether the seed-to-seed spread hides a better model, without training one, and
whether the fields that set the cut are those with little to judge.

With --subsets, every ensemble of 2 or more of the models, with what `leukoscope ensemble` would flag:
the fields any member sent to review whatever its confidence (`reviewed_whatever_confidence`: too few
leukocytes, focus, out of distribution, or the split of a member that is itself an ensemble), and the fields
whose members do not all make the same benign-vs-malignant call; and the error of the calls kept. How many
seeds a lab needs, without joining every subset.
"""

from __future__ import annotations

import argparse
import csv
import itertools

import numpy as np
from sklearn.metrics import roc_auc_score

from leukoscope.scoring.intervals import wilson
from leukoscope.scoring.predictions import reviewed_whatever_confidence
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


def geometric_mean(probs: np.ndarray) -> np.ndarray:
    """The models' (M, N, K) class probabilities combined as `leukoscope ensemble` combines them: a mean of logs."""
    mean = np.exp(np.log(np.clip(probs, 1e-12, 1)).mean(0))
    return mean / mean.sum(1, keepdims=True)


def flagged_line(probs: np.ndarray, other_flags: np.ndarray, y: np.ndarray, benign: int) -> str:
    """What the ensemble of these models would send to review, and the benign-vs-malignant error of the rest."""
    member_benign = probs.argmax(2) == benign
    disagree = member_benign.any(0) & ~member_benign.all(0)
    flagged = other_flags | disagree
    wrong = (geometric_mean(probs).argmax(1) == benign) != (y == benign)
    kept = ~flagged
    low, high = wilson(int(wrong[kept].sum()), int(kept.sum()))
    return (
        f"members disagree {100 * disagree.mean():4.1f} %, flagged in all {100 * flagged.mean():4.1f} %, "
        f"error kept {100 * wrong[kept].mean():.2f} % ({100 * low:.1f}-{100 * high:.1f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("predictions", nargs="+", help="predictions.csv of each model, on the same images")
    parser.add_argument("--subsets", action="store_true", help="also every ensemble of 2 or more of the models, with its flags")
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
    mean = geometric_mean(probs)
    print(line(f"ensemble of {len(models)}", mean, y, cells, classes))
    benign = classes.index(BENIGN)
    if args.subsets:
        other_flags = np.array([[reviewed_whatever_confidence(m[p]["abstain_reason"]) for p in paths] for m in models]).any(0)
        print("ensembles of the models numbered 0 to " + str(len(models) - 1) + " (in the order given):")
        for size in range(2, len(models) + 1):
            for subset in itertools.combinations(range(len(models)), size):
                name = "+".join(map(str, subset))
                print(line(name, geometric_mean(probs[list(subset)]), y, cells, classes))
                print(f"  {'':40} {flagged_line(probs[list(subset)], other_flags, y, benign)}")
    malignant = np.flatnonzero(y != benign)
    worst = malignant[np.argsort(-mean[malignant, benign])[:8]]
    print("malignant fields the ensemble ranks most benign (p(Benign), leukocytes):")
    print("  " + ", ".join(f"{paths[i].rsplit('/', 1)[-1]} ({mean[i, benign]:.2f}, {cells[i]})" for i in worst))


if __name__ == "__main__":
    main()
