"""What a cell bundle's calls owe to the scale its crops are cut at: the same weights, crops cut at another scale.

Usage: python benchmarks/crop_scale.py BUNDLE --splits SPLITS [--data DATA] [--split test] [--scale cell|red_cell|pixel_size]

Evaluates the bundle on a split twice, with its own `cells.scale` and with `--scale` in its place
(inference only), and runs `evaluate --shortcut-checks` on both. A bundle trained on crops sized by
each field's own red cells (`red_cell`) and evaluated at the set's pixel size (`pixel_size`, the
training fields' red cell for every field) shows what the per-field ruler itself told the model:
where the 4-class figure falls while benign vs malignant holds, the ruler carried the class, not the
cell. Printed per scale: 4-class accuracy (95 % CI), malignant sensitivity and benign specificity,
the specificity the ranking allows at 99 % sensitivity, the fields flagged, and the shares of
predictions that the background swap and the stain swap change.
"""

from __future__ import annotations

import dataclasses
import typing

from cell_bundle_args import bundle_and_split_parser, load_cell_bundle

from leukoscope.config import CellsConfig
from leukoscope.evaluation.evaluate import evaluate_paths, labelled_paths
from leukoscope.evaluation.shortcuts import run_shortcut_checks
from leukoscope.inference.predictor import Predictor

SCALES = typing.get_args(typing.get_type_hints(CellsConfig)["scale"])


def main() -> None:
    ap = bundle_and_split_parser(__doc__.splitlines()[0])
    ap.add_argument("--scale", choices=SCALES, default="pixel_size", help="the crop scale to compare with the bundle's own")
    args = ap.parse_args()
    bundle = load_cell_bundle(args.bundle)
    paths, truth = labelled_paths(bundle, args.data, args.splits, args.split)
    own = Predictor(bundle)
    other = Predictor(bundle)
    other.crop_config = dataclasses.replace(own.crop_config, scale=args.scale)
    for name, predictor in ((f"its own scale ({own.crop_config.scale})", own), (f"cut at {args.scale}", other)):
        rows, m, _ = evaluate_paths(predictor, paths, truth, bootstrap=200)
        checks = run_shortcut_checks(predictor, [r["path"] for r in rows], [r["true"] for r in rows])["results"]
        bm = m["benign_vs_malignant"]
        print(
            f"{name}: 4-class {100 * m['accuracy']:.2f} % ({100 * m['accuracy_ci'][0]:.1f}-{100 * m['accuracy_ci'][1]:.1f}), "
            f"sensitivity {100 * bm['sensitivity']:.1f} %, specificity {100 * bm['specificity']:.1f} %, "
            f"specificity at 99 % sensitivity {100 * bm['specificity_at_99_sensitivity']:.0f} %, flagged {100 * m['abstained'] / m['n']:.1f} %, "
            f"background swap {100 * checks['background swapped']['changed']:.2f} %, stain swap {100 * checks['stain swapped']['changed']:.2f} %",
            flush=True,
        )


if __name__ == "__main__":
    main()
