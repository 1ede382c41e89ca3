"""Which rule over a field's cells ranks fields best for screening: the pooled call, or one of its cells?

Usage: python benchmarks/screening_rules.py BUNDLE --splits runs/X/splits.json [--data ../shared/data/taleqani-all]

A cell-level bundle's per-cell probabilities on the test split, pooled per field by several rules
into one p(Benign): the bundle's own call (attention pooling or the mean of log-probabilities), the
geometric mean of the cells' p(Benign), their lower quartile, the share of cells called benign, and
the least benign cell ("one blast makes a field malignant") and the 2nd and 3rd least benign (a field
with fewer cells takes its most benign). Printed per rule: the benign-vs-malignant AUROC and the benign
specificity that its ranking allows at 99 % malignant sensitivity, over all fields and over the fields
with at least 6 leukocytes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.metrics import roc_auc_score

from cell_bundle_args import bundle_and_split_parser, load_cell_bundle

from leukoscope.data.images import read_rgb
from leukoscope.data.split import split_rows
from leukoscope.inference.predictor import Predictor
from leukoscope.progress import progress_bar
from leukoscope.scoring.screening import specificity_at_sensitivity

BENIGN = "Benign"
RULES: dict[str, Callable[[np.ndarray], float]] = {  # a field's cells' p(Benign) -> the field's
    "geometric mean of the cells": lambda p: float(np.exp(np.log(np.clip(p, 1e-6, 1)).mean())),
    "lower quartile of the cells": lambda p: float(np.quantile(p, 0.25)),
    "share of cells called benign": lambda p: float((p >= 0.5).mean()),
    "least benign cell": lambda p: float(p.min()),
    "2nd least benign cell": lambda p: float(np.sort(p)[min(2, len(p)) - 1]),
    "3rd least benign cell": lambda p: float(np.sort(p)[min(3, len(p)) - 1]),
}


def main() -> None:
    ap = bundle_and_split_parser(__doc__.splitlines()[0])
    args = ap.parse_args()
    bundle = load_cell_bundle(args.bundle)
    predictor, benign = Predictor(bundle), bundle.classes.index(BENIGN)
    rows = split_rows(args.data, args.splits, args.split)
    units = []
    with progress_bar(len(rows), "cells") as bar:
        for row in rows:
            units.append(predictor.units(read_rgb(row.path, max_pixels=bundle.pipeline.config.max_pixels)))
            bar.update()
    pred = predictor.predict_units(units)
    malignant = np.array([r.label != BENIGN for r in rows])
    offsets = np.cumsum([0, *pred.units])
    cells_benign = [pred.unit_probs[offsets[i] : offsets[i + 1], benign] for i in range(len(rows))]
    scores = {"the bundle's own call": pred.probs[:, benign]}
    scores |= {name: np.array([rule(p) if len(p) else 1.0 for p in cells_benign]) for name, rule in RULES.items()}
    enough = pred.units >= 6
    print(f"{args.bundle}, {len(rows)} {args.split} fields ({int(enough.sum())} with at least 6 leukocytes)")
    print("AUROC, and benign specificity at 99 % malignant sensitivity (the ranking's best): all fields / at least 6 leukocytes")
    for name, score in scores.items():
        auroc = [roc_auc_score(malignant[kept], -score[kept]) for kept in (slice(None), enough)]
        everywhere = specificity_at_sensitivity(score, malignant, 0.99)
        with_six = specificity_at_sensitivity(score[enough], malignant[enough], 0.99)
        print(f"  {name:30s} AUROC {auroc[0]:.3f} / {auroc[1]:.3f}   {100 * everywhere:3.0f} % / {100 * with_six:3.0f} %")


if __name__ == "__main__":
    main()
