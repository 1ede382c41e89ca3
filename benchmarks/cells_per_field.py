"""A field called from k of its cells: how much of a field's call one cell, two, three... carry.

Usage: python benchmarks/cells_per_field.py BUNDLE [BUNDLE ...] --splits SPLITS [--every 2] [--k 1 2 3 5] [--draws 5] [--tta | --no-tta]

A view at a higher magnification shows a few of a field's cells, and a field's call from all of them rests on
each one's read. For every field of the split, each bundle's cells are found and read once (as the bundle
predicts: its eval.tta, unless --tta or --no-tta), then k of them are drawn at random (`--draws` times; a field
with k cells or fewer keeps them all) and pooled by the bundle's attention pool, and the pooled call is scored:
4-class accuracy, benign vs malignant accuracy and benign specificity, the mean over the draws. Fields in which no
cell is found are left out and counted. Attention-pooled cell bundles only.
"""

from __future__ import annotations

import argparse

import numpy as np
from cell_bundle_args import bundles_and_fields_parser, load_cell_bundle, split_fields

from leukoscope.config import BENIGN_CLASS
from leukoscope.inference.predictor import Predictor
from leukoscope.models.mil import pool_bags
from leukoscope.progress import progress
from leukoscope.scoring.calibration import softmax


def field_features(predictor: Predictor, images: list[np.ndarray]) -> list[np.ndarray]:
    """Each field's cells' features, as the predictor reads them."""
    features = []
    for rgb in progress(images, "reading the cells"):
        units = predictor.units(rgb)
        features.append(predictor.logits_and_features(units)[1] if len(units) else np.zeros((0, 0), np.float32))
    return features


def scores(predictor: Predictor, bags: list[np.ndarray], truth: np.ndarray) -> dict[str, float]:
    """4-class accuracy, benign vs malignant accuracy and benign specificity of the pooled calls of `bags`."""
    bundle = predictor.bundle
    logits, _ = pool_bags(bundle.mil, bags)
    called = bundle.calls(softmax(logits, bundle.mil_temperature))
    benign = bundle.classes.index(BENIGN_CLASS)
    truly_benign, called_benign = truth == benign, called == benign
    return {
        "accuracy": float((called == truth).mean()),
        "malignancy_accuracy": float((called_benign == truly_benign).mean()),
        "benign_specificity": float(called_benign[truly_benign].mean()) if truly_benign.any() else float("nan"),
    }


def main() -> None:
    parser = bundles_and_fields_parser(__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, nargs="+", default=[1, 2, 3, 5], help="numbers of cells to pool")
    parser.add_argument("--draws", type=int, default=5, help="random draws of k cells per field")
    parser.add_argument("--tta", action=argparse.BooleanOptionalAction, help="read each cell as the mean of 8 flips and rotations (default: as each bundle's thresholds were set)")
    args = parser.parse_args()
    truth_names, images = split_fields(args)
    for path in args.bundles:
        bundle = load_cell_bundle(path)
        if bundle.mil is None or BENIGN_CLASS not in bundle.classes:
            raise SystemExit(f"{path}: needs an attention pool (cells.aggregate: attention) and a {BENIGN_CLASS} class")
        predictor = Predictor(bundle, tta=args.tta)
        features = field_features(predictor, images)
        found = [i for i, f in enumerate(features) if len(f)]
        bags = [features[i] for i in found]
        truth = np.array([bundle.classes.index(truth_names[i]) for i in found])
        cells = np.array([len(b) for b in bags])
        print(f"{path} (8 orientations: {predictor.tta}): cells found in {len(found)} of {len(images)} fields, median {np.median(cells):.0f} a field")
        rng = np.random.default_rng(0)
        for k in args.k:
            drawn = [scores(predictor, [b[np.sort(rng.choice(len(b), min(k, len(b)), replace=False))] for b in bags], truth) for _ in range(args.draws)]
            mean = {key: 100 * float(np.mean([d[key] for d in drawn])) for key in drawn[0]}
            print(f"  {k:>3} cell(s)  4-class {mean['accuracy']:5.1f} %  benign vs malignant {mean['malignancy_accuracy']:5.1f} %  benign specificity {mean['benign_specificity']:5.1f} %")
        every = scores(predictor, bags, truth)
        print(f"  all cells  4-class {100 * every['accuracy']:5.1f} %  benign vs malignant {100 * every['malignancy_accuracy']:5.1f} %  benign specificity {100 * every['benign_specificity']:5.1f} %")


if __name__ == "__main__":
    main()
