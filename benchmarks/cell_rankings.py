"""Which ranking of fields screens best: the bundle's own pooled call, or its most malignant cells?

Usage: python benchmarks/cell_rankings.py BUNDLE [BUNDLE ...] --splits SPLITS [--data DATA] [--split test] [--every N]

A smear with blasts is malignant however many normal cells it also shows, which argues for ranking a
field by its most malignant cells rather than by a pool of all of them. Printed per bundle, for the
fields with at least 1 and at least 6 leukocytes: the benign-vs-malignant AUROC and the benign
specificity that each ranking allows at 99 % malignant sensitivity. The rankings: the bundle's call
(attention pool or mean of log-probabilities), the geometric mean of the cells' p(Benign), the k-th
most malignant cell's p(malignant) (k = 1, 2, 3; a field with fewer cells takes its least malignant),
and the share of cells more likely malignant than not.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from cell_bundle_args import bundles_and_fields_parser, load_cell_bundle, split_fields
from sklearn.metrics import roc_auc_score

from leukoscope.config import BENIGN_CLASS
from leukoscope.inference.predictor import Predictor
from leukoscope.scoring.screening import specificity_at_sensitivity

MIN_CELLS = (1, 6)


def per_field(p_benign_cells: np.ndarray, counts: np.ndarray, rule: Callable[[np.ndarray], float]) -> np.ndarray:
    """`rule` applied to each field's cells' p(Benign); a field without cells scores 0.5."""
    offsets = np.cumsum([0, *counts])
    return np.array([rule(p_benign_cells[offsets[i] : offsets[i + 1]]) if n else 0.5 for i, n in enumerate(counts)])


def kth_most_malignant(k: int) -> Callable[[np.ndarray], float]:
    return lambda p_benign: float(np.sort(1 - p_benign)[::-1][min(k, len(p_benign)) - 1])


def main() -> None:
    args = bundles_and_fields_parser(__doc__.splitlines()[0]).parse_args()
    truth, images = split_fields(args)
    malignant = np.array([t != BENIGN_CLASS for t in truth])
    for path in args.bundles:
        bundle = load_cell_bundle(path)
        pred = Predictor(bundle).predict_rgbs(images)
        benign = bundle.classes.index(BENIGN_CLASS)
        cells, counts = pred.unit_probs[:, benign], np.asarray(pred.units)
        rankings = {  # p(malignant)-like: higher is more malignant
            "the bundle's call": 1 - pred.probs[:, benign],
            "geometric mean of the cells": per_field(cells, counts, lambda p: 1 - float(np.exp(np.log(np.clip(p, 1e-12, 1)).mean()))),
            **{f"most malignant cell no. {k}": per_field(cells, counts, kth_most_malignant(k)) for k in (1, 2, 3)},
            "share of cells malignant": per_field(cells, counts, lambda p: float((p < 0.5).mean())),
        }
        print(f"{path}: {len(counts)} fields, {int((counts >= MIN_CELLS[1]).sum())} with {MIN_CELLS[1]} or more leukocytes")
        for name, score in rankings.items():
            parts = []
            for least in MIN_CELLS:
                kept = counts >= least
                spec = specificity_at_sensitivity(1 - score[kept], malignant[kept], 0.99)
                parts.append(f">= {least}: AUROC {roc_auc_score(malignant[kept], score[kept]):.3f}, spec at 99 % sens {'-' if spec is None else f'{100 * spec:.0f} %'}")
            print(f"  {name:30s} " + "   ".join(parts), flush=True)


if __name__ == "__main__":
    main()
