"""Does the abstention threshold keep its promise on fields it was not chosen on?

Usage: python benchmarks/abstention.py BUNDLE --splits SPLITS [--data DATA] [--targets 0.02 0.05]

The bundle predicts the validation and the test split once. For each target error and each way of
holding the validation error to it (its estimate, or its Wilson 95 % upper bound: `eval.abstain_bound`),
the threshold is chosen on validation, as training chooses it, and applied to the test split;
`estimate, called` chooses it on the validation fields that no other reason sends to review, and
`expected` on the same fields by their calibrated confidence instead of their few errors (the error
expected of the accepted calls is the mean of one minus their confidence).
Printed: the threshold, the share of test fields flagged for review (below it, or for a reason
of its own: out of distribution, too few leukocytes, out of focus) and the error of the calls not
flagged, counted on what the bundle's abstention vouches for (the class, or benign vs malignant)
and made by its call rule. A last row per target chooses the threshold on the test split itself
(`test, hindsight`): the fewest fields this ranking can flag and hold the target, so the rest of the
flagged share is the validation split's choice.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from leukoscope.evaluation.evaluate import labelled_paths
from leukoscope.inference.predictor import Predictor
from leukoscope.scoring.bundle import load_bundle
from leukoscope.scoring.ood import abstain_threshold
from leukoscope.scoring.predictions import reviewed_whatever_confidence

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "taleqani-all"


def split_outputs(predictor: Predictor, data: str, splits: str, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each readable field's confidence in its call, whether the call is right, and whether it goes to review whatever
    its confidence: for any reason but the threshold (out of distribution, too few leukocytes, out of focus, ...)."""
    bundle = predictor.bundle
    paths, truth = labelled_paths(bundle, data, splits, split)
    rows, _ = predictor.predict_paths(paths)
    true_of = dict(zip(paths, truth))
    probs = np.array([[r[f"p_{c}"] for c in bundle.classes] for r in rows])
    y = np.array([bundle.classes.index(true_of[r["path"]]) for r in rows])
    reviewed_anyway = np.array([reviewed_whatever_confidence(r["abstain_reason"]) for r in rows], bool)
    return bundle.call_confidence(probs), bundle.call_correct(bundle.calls(probs), y), reviewed_anyway


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--splits", required=True)
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--targets", type=float, nargs="+", default=[0.02, 0.05])
    args = parser.parse_args()
    bundle = load_bundle(args.bundle)
    predictor = Predictor(bundle)
    val_conf, val_ok, val_reviewed = split_outputs(predictor, args.data, args.splits, "val")
    test_conf, test_ok, test_reviewed = split_outputs(predictor, args.data, args.splits, "test")
    val_called, test_called = ~val_reviewed, ~test_reviewed  # the fields the threshold decides
    print(f"{args.bundle}: abstention on {bundle.abstain_on}, call {bundle.call_rule}; {len(val_ok)} validation fields, {len(test_ok)} test fields")
    print(f"{'target':>7} {'held to':>15} {'threshold':>9} {'test flagged':>13} {'accepted error':>15}")
    for target in args.targets:
        cuts = {bound: abstain_threshold(val_conf, val_ok, target, bound=bound) for bound in ("estimate", "upper")}
        cuts["estimate, called"] = abstain_threshold(val_conf[val_called], val_ok[val_called], target)
        cuts["expected"] = abstain_threshold(val_conf[val_called], val_conf[val_called], target)
        cuts["test, hindsight"] = abstain_threshold(test_conf[test_called], test_ok[test_called], target)
        for held_to, cut in cuts.items():
            flagged = (test_conf < cut) | test_reviewed
            kept = ~flagged
            error = f"{100 * (1 - test_ok[kept].mean()):.1f} % of {kept.sum()}" if kept.any() else "-"
            print(f"{100 * target:6.1f}% {held_to:>15} {cut:9.3f} {100 * flagged.mean():12.1f}% {error:>15}")


if __name__ == "__main__":
    main()
