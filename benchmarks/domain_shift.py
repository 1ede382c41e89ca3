"""How far does each bundle's accuracy move when the fields look as if another lab had made them?

Usage: python benchmarks/domain_shift.py BUNDLE [BUNDLE ...] --splits SPLITS [--data DATA] [--split test] [--tta]
       [--source-px N|none] [--cells-fixed] [--every N] [--out results.json]

Each test field is altered before the bundle sees it, by every shift of `leukoscope.data.shifts`
(hue, saturation, white balance, gamma, blur, JPEG, magnification, grey), and the bundle predicts
it as `predict` would (cells detected on the altered field). Printed per bundle and shift: 4-class
accuracy, malignant sensitivity, benign specificity, the share of predictions that changed and the
share flagged for review (and, in the JSON, the screening call's sensitivity and specificity); last,
the worst shift. `--source-px` replaces a cell bundle's crop detail cap (cells.source_px) at
inference only: the cap's effect on the shifts, the weights unchanged. `--cells-fixed` also predicts
each shifted field with its cells found on the unshifted one (shifts that keep the geometry): what
moves a call then is the classifier, not the detector. `--every N` keeps every Nth field.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from leukoscope.config import BENIGN_CLASS
from leukoscope.data.images import read_rgb
from leukoscope.data.shifts import DOMAIN_SHIFTS, MAGNIFICATIONS
from leukoscope.evaluation.evaluate import labelled_paths
from leukoscope.inference.predictor import Predictor
from leukoscope.scoring.bundle import load_bundle

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "taleqani-all"


def sensitivity_specificity(called_malignant: np.ndarray, malignant: np.ndarray) -> tuple[float, float]:
    """Malignant sensitivity and benign specificity of one benign/malignant call (nan without such fields)."""
    sensitivity = float(called_malignant[malignant].mean()) if malignant.any() else float("nan")
    specificity = float((~called_malignant[~malignant]).mean()) if (~malignant).any() else float("nan")
    return sensitivity, specificity


def figures(pred_labels: np.ndarray, truth: np.ndarray, benign: int) -> dict[str, float]:
    sensitivity, specificity = sensitivity_specificity(pred_labels != benign, truth != benign)
    return {"accuracy": float((pred_labels == truth).mean()), "malignant_sensitivity": sensitivity, "benign_specificity": specificity}


def run(
    bundle_path: str, images: list[np.ndarray], truth_names: list[str], tta: bool = False, source_px: str | None = None, cells_fixed: bool = False
) -> dict[str, dict[str, float]]:
    bundle = load_bundle(bundle_path)
    predictor = Predictor(bundle, tta=tta)
    if source_px is not None and predictor.crop_config is not None:
        predictor.crop_config = dataclasses.replace(predictor.crop_config, source_px=None if source_px == "none" else int(source_px))
        print(f"  crop detail cap at inference: {source_px}")
    truth = np.array([bundle.classes.index(t) for t in truth_names])
    benign = bundle.classes.index(BENIGN_CLASS)
    out: dict[str, dict[str, float]] = {}
    reference = None
    for name, shift in {"none": lambda x: x, **DOMAIN_SHIFTS}.items():
        started = time.perf_counter()
        shifted = [shift(rgb) for rgb in images]
        pred = predictor.predict_units([predictor.units(x) for x in shifted])
        labels = pred.labels
        reference = labels if reference is None else reference
        out[name] = {**figures(labels, truth, benign), "changed": float((labels != reference).mean()), "flagged": float(pred.abstain.mean())}
        if pred.screen is not None:  # the screening call at the bundle's validated cut
            out[name]["screening_sensitivity"], out[name]["screening_specificity"] = sensitivity_specificity(pred.screen, truth != benign)
        r = out[name]
        print(
            f"  {name:40} acc {100 * r['accuracy']:5.1f} %  sens {100 * r['malignant_sensitivity']:5.1f} %  spec {100 * r['benign_specificity']:5.1f} %"
            f"  changed {100 * r['changed']:5.1f} %  flagged {100 * r['flagged']:5.1f} %  ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
        if cells_fixed and predictor.cell_level and name != "none" and name not in MAGNIFICATIONS:
            fixed = predictor.predict_units([predictor.units(x, detect_on=rgb) for x, rgb in zip(shifted, images)])
            out[name]["cells_fixed"] = figures(fixed.labels, truth, benign)
            f = out[name]["cells_fixed"]
            print(f"  {'  cells found on the unshifted field':40} acc {100 * f['accuracy']:5.1f} %  sens {100 * f['malignant_sensitivity']:5.1f} %  spec {100 * f['benign_specificity']:5.1f} %")
    worst = min((k for k in out if k != "none"), key=lambda k: out[k]["accuracy"])
    print(f"  worst: {worst}, {100 * (out['none']['accuracy'] - out[worst]['accuracy']):.1f} points below the unshifted accuracy")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="+")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--splits", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--tta", action="store_true", help="predict as `predict --tta` does: the mean over 8 flips and rotations")
    parser.add_argument("--source-px", help="a cell bundle's crop detail cap at inference (a number of pixels, or none), in place of its own")
    parser.add_argument("--cells-fixed", action="store_true", help="also predict each shifted field with the cells found on the unshifted one")
    parser.add_argument("--every", type=int, default=1, help="keep every Nth field (a quicker look)")
    parser.add_argument("--out", help="write every figure as JSON")
    args = parser.parse_args()
    paths, truth = labelled_paths(load_bundle(args.bundles[0]), args.data, args.splits, args.split)
    paths, truth = paths[:: args.every], truth[:: args.every]
    images = [read_rgb(p) for p in paths]
    print(f"{len(images)} {args.split} fields")
    results = {}
    for b in args.bundles:
        print(b)
        results[b] = run(b, images, truth, args.tta, args.source_px, args.cells_fixed)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
