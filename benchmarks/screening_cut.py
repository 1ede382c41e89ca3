"""Whether the screening cut chosen on validation holds on new fields: the cut validation reaches, or a conformal one.

Usage: python benchmarks/screening_cut.py --val runs/X/val/predictions.csv --test runs/X/eval/predictions.csv [--target 0.99]
       [--validation-sizes 300 430]

Each --val file is one bundle's `leukoscope evaluate --split val` output, and the --test file in the same
place its output on the test split. Printed per bundle and rule (scoring/screening.py): the cut on p(Benign),
how many of validation's malignant fields lie below it, and the screening call's malignant sensitivity (95 %
Wilson interval) and benign specificity on the test split. Then, to see past one test split: the malignant
fields of both splits pooled and redrawn --draws times into a validation set of the same size and the rest;
the mean sensitivity on the rest, how often it fell short of the target, and the mean specificity on the test
split's benign fields at those cuts. Fields are redrawn singly, not by patient, so the redraws are a little
kinder than a new laboratory's patients would be. --validation-sizes redraws validation sets of other numbers of
malignant fields as well: whether a larger validation split would move the cut, or the model's ranking holds it.
"""

from __future__ import annotations

import argparse
import csv

import numpy as np

from leukoscope.scoring.intervals import wilson
from leukoscope.scoring.screening import SCREENING_RULES, screen_positive, screening_threshold

BENIGN = "Benign"


def read(path: str) -> tuple[np.ndarray, np.ndarray, int]:
    """One predictions.csv's class probabilities, true classes (indices) and the Benign column's index."""
    with open(path, newline="") as f:
        rows = [row for row in csv.DictReader(f) if row["status"] == "ok"]
    if not rows:
        raise SystemExit(f"{path}: no predicted fields")
    classes = [c.removeprefix("p_") for c in rows[0] if c.startswith("p_")]
    probs = np.array([[float(row[f"p_{c}"]) for c in classes] for row in rows])
    return probs, np.array([classes.index(row["true"]) for row in rows]), classes.index(BENIGN)


def report(val_path: str, test_path: str, target: float, draws: int, seed: int, sizes: list[int]) -> None:
    val_probs, val_y, benign = read(val_path)
    test_probs, test_y, _ = read(test_path)
    val_malignant, test_malignant = val_y != benign, test_y != benign
    n_val = int(val_malignant.sum())
    print(f"{val_path}: {n_val} malignant of {len(val_y)} validation fields; test {int(test_malignant.sum())} malignant, {int((~test_malignant).sum())} benign")
    pooled = np.concatenate([val_probs[val_malignant], test_probs[test_malignant]])
    benign_test = test_probs[~test_malignant]
    rng = np.random.default_rng(seed)
    orders = [rng.permutation(len(pooled)) for _ in range(draws)]
    if too_many := [size for size in sizes if not 0 < size < len(pooled)]:
        raise SystemExit(f"--validation-sizes {too_many[0]}: the two splits hold {len(pooled)} malignant fields; a redraw needs 1 to {len(pooled) - 1} of them")
    for rule in SCREENING_RULES:
        cut = screening_threshold(val_probs[:, benign], val_malignant, target, rule)
        below = int((val_probs[val_malignant, benign] < cut).sum())
        screened = screen_positive(test_probs, benign, cut)
        caught, n_mal = int(screened[test_malignant].sum()), int(test_malignant.sum())
        low, high = wilson(caught, n_mal)
        specificity = 1 - screened[~test_malignant].mean()
        print(
            f"  {rule:9} cut p(Benign) < {cut:.4f} ({below} of {n_val} validation malignant below)  test: sensitivity "
            f"{100 * caught / n_mal:.1f} % ({100 * low:.1f}-{100 * high:.1f}), specificity {100 * specificity:.1f} %"
        )
        for size in [n_val, *sizes]:
            sensitivities, specificities = [], []
            for order in orders:
                calibration, rest = pooled[order[:size]], pooled[order[size:]]
                redrawn = screening_threshold(calibration[:, benign], np.ones(size, bool), target, rule)
                sensitivities.append(screen_positive(rest, benign, redrawn).mean())
                specificities.append(1 - screen_positive(benign_test, benign, redrawn).mean())
            sensitivities = np.array(sensitivities)
            print(
                f"    {draws} redraws of {size} validation malignant fields (the other {len(pooled) - size} to test): sensitivity "
                f"{100 * sensitivities.mean():.2f} %, short of {100 * target:g} % in {100 * (sensitivities < target).mean():.0f} %, "
                f"specificity {100 * np.mean(specificities):.1f} % (tenth percentile {100 * np.percentile(specificities, 10):.1f} %)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--val", nargs="+", required=True, help="each bundle's predictions.csv on its validation split")
    parser.add_argument("--test", nargs="+", required=True, help="the same bundles' predictions.csv on the test split, in the same order")
    parser.add_argument("--target", type=float, default=0.99, help="the malignant sensitivity the cut is chosen for")
    parser.add_argument("--draws", type=int, default=2000, help="redraws of the pooled malignant fields")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--validation-sizes", type=int, nargs="*", default=[], help="also redraw validation sets of these numbers of malignant fields")
    args = parser.parse_args()
    if len(args.val) != len(args.test):
        parser.error(f"{len(args.val)} --val files and {len(args.test)} --test files: one of each per bundle")
    for val_path, test_path in zip(args.val, args.test):
        report(val_path, test_path, args.target, args.draws, args.seed, args.validation_sizes)


if __name__ == "__main__":
    main()
