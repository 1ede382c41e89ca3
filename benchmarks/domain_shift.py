"""How far does each bundle's accuracy move when the fields look as if another lab had made them?

Usage: python benchmarks/domain_shift.py BUNDLE [BUNDLE ...] --splits SPLITS [--data DATA] [--split test] [--tta | --no-tta]
       [--source-px N|none] [--cells-fixed] [--pixel-scale] [--every N] [--shift TEXT ...] [--out results.json]

Each test field is altered before the bundle sees it, by every shift of `leukoscope.data.shifts`
(hue, saturation, white balance, gamma, blur, sharpening, JPEG, magnification, vignetting, a field stop's
black corners, a heavier or paler nuclear dye, grey, one at a time; then each
simulated other laboratory's profile, several at once and at its pixel scale), and the bundle predicts it
as `predict` would without a pixel size (cells detected on the altered field; where the shifted set's
red cells say another magnification, cut at the scale they give, and also, on a line of its own, as
training fields' views, what `--pixel-size field` does and what this row was before the twenty-fifth
session of issue 17). Printed per bundle and shift: 4-class
accuracy and its change from the unshifted figure, with a paired bootstrap 95 % interval and whether
the shift is within 5 points (the whole interval is), out (the whole interval is below) or undecided
on this many fields; the same for the benign-vs-malignant call ("b/m": whether the field is called
leukemic at all, the call morphology can make, the subtype aside); malignant sensitivity, benign
specificity, the share of predictions that changed (and, where 5 % or more did, the three most
frequent moves from the unshifted call to the shifted one) and the share flagged for review, with the
share of it out of focus where the bundle has a focus floor, and the error of the calls not flagged
on what the bundle's abstention vouches for (benign vs malignant, or the class): whether review still
catches what the shift breaks (and, in the JSON, the screening call's sensitivity and specificity);
last, for each of the two calls, the worst shift and the count of each verdict over the single
shifts (the other laboratories' rows carry their own). `--shift TEXT` runs only the shifts whose name
holds one of the texts given (the unshifted row always). `--source-px` replaces a cell
bundle's crop detail cap (cells.source_px) at inference only: the cap's effect on the shifts, the
weights unchanged. `--cells-fixed` also predicts each shifted field with its cells found on the
unshifted one (shifts that keep the geometry): what moves a call then is the classifier, not the
detector. `--pixel-scale` also predicts each shifted set as `predict --pixel-size auto` does: at the
pixel scale its red cells give, measured over the whole shifted set (one microscope; within the
ruler's tolerance nothing is resampled, and the calls are those above). Under a magnification above
1 the frame shows fewer cells, so each such shift is also measured on its "same view": the part of
the field it shows, unmagnified (padded with the field's median colour), which separates the loss of
cells from the change of scale. Where a shift leaves some fields with no cell found (flagged, their
probabilities uniform), the change is also given on the fields that keep one: the calls a reader would
get, apart from the fields sent back for having nothing to call. `--every N` keeps every Nth field.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from cell_bundle_args import bundles_and_fields_parser, split_fields
from sklearn.metrics import confusion_matrix

from leukoscope.cells.crops import resamples
from leukoscope.cells.ruler import estimate_pixel_scale, measure_red_cells
from leukoscope.config import BENIGN_CLASS
from leukoscope.data.shifts import DOMAIN_SHIFTS, MAGNIFICATIONS, OTHER_LAB_SHIFTS
from leukoscope.inference.pixel_scale import untold_pixel_scale
from leukoscope.inference.predictor import Predictor
from leukoscope.scoring.bundle import load_bundle
from leukoscope.scoring.intervals import paired_difference
from leukoscope.scoring.ood import abstain_correct

TOLERANCE = 0.05  # issue 17: accuracy under every shift within 5 points of the unshifted figure
MOVES_SHOWN_FROM = 0.05  # a shift that changes this share of the calls also prints where the most of them went


def sensitivity_specificity(called_malignant: np.ndarray, malignant: np.ndarray) -> tuple[float, float]:
    """Malignant sensitivity and benign specificity of one benign/malignant call (nan without such fields)."""
    sensitivity = float(called_malignant[malignant].mean()) if malignant.any() else float("nan")
    specificity = float((~called_malignant[~malignant]).mean()) if (~malignant).any() else float("nan")
    return sensitivity, specificity


def figures(pred_labels: np.ndarray, truth: np.ndarray, benign: int) -> dict[str, float]:
    sensitivity, specificity = sensitivity_specificity(pred_labels != benign, truth != benign)
    return {"accuracy": float((pred_labels == truth).mean()), "malignant_sensitivity": sensitivity, "benign_specificity": specificity}


def same_view(rgb: np.ndarray, factor: float) -> np.ndarray:
    """The part of the field that `magnify(rgb, factor)` shows (factor > 1), at its own scale, padded with the field's median colour."""
    h, w = rgb.shape[:2]
    vh, vw = round(h / factor), round(w / factor)
    y0, x0 = (h - vh) // 2, (w - vw) // 2
    out = np.empty_like(rgb)
    out[:] = np.median(rgb.reshape(-1, 3), axis=0).astype(np.uint8)
    out[y0 : y0 + vh, x0 : x0 + vw] = rgb[y0 : y0 + vh, x0 : x0 + vw]
    return out


def accuracy_change(correct: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """Shifted minus unshifted accuracy on the same fields, with its paired bootstrap 95 % interval, and
    whether the shift costs no more than TOLERANCE: "within" (the whole interval lies above -TOLERANCE),
    "out" (the whole interval lies below it) or "undecided" (too few fields to say)."""
    change, (low, high) = paired_difference(correct, reference)
    verdict = "within" if low >= -TOLERANCE else "out" if high < -TOLERANCE else "undecided"
    return {"accuracy_change": change, "accuracy_change_ci": [low, high], "verdict": verdict}


def malignancy_change(pred_labels: np.ndarray, reference: np.ndarray, truth: np.ndarray, benign: int) -> dict[str, Any]:
    """The benign-vs-malignant call's accuracy, and its change from the unshifted calls as `accuracy_change` gives it."""
    correct, unshifted = abstain_correct(pred_labels, truth, benign), abstain_correct(reference, truth, benign)
    return {"malignancy_accuracy": float(correct.mean()), **{f"malignancy_{k}": v for k, v in accuracy_change(correct, unshifted).items()}}


def call_moves(before: np.ndarray, after: np.ndarray, classes: list[str]) -> dict[str, int]:
    """How many calls went from each class to each other class, the most frequent first: where a shift pushes the fields."""
    moved = confusion_matrix(before, after, labels=range(len(classes)))
    np.fill_diagonal(moved, 0)
    moves = {f"{classes[i]} -> {classes[j]}": int(moved[i, j]) for i, j in zip(*np.nonzero(moved))}
    return dict(sorted(moves.items(), key=lambda move: -move[1]))


def _line(name: str, r: dict[str, Any], seconds: float | None = None) -> str:
    """One printed row: accuracy and its change, the benign-vs-malignant call's, sensitivity and specificity, and where `r` has them,
    the calls changed and flagged, and the seconds taken."""
    low, high = r["accuracy_change_ci"]
    change = f"  {100 * r['accuracy_change']:+5.1f} ({100 * low:+5.1f} to {100 * high:+5.1f}) {r['verdict']:9}" if r["verdict"] else ""
    if "malignancy_accuracy" in r:
        low, high = r["malignancy_accuracy_change_ci"]
        change += f"  b/m {100 * r['malignancy_accuracy']:5.1f} %"
        change += f" {100 * r['malignancy_accuracy_change']:+5.1f} ({100 * low:+5.1f} to {100 * high:+5.1f}) {r['malignancy_verdict']:9}" if r["verdict"] else ""
    calls = f"  changed {100 * r['changed']:5.1f} %  flagged {100 * r['flagged']:5.1f} %" if "changed" in r else ""
    calls += f" (out of focus {100 * r['out_of_focus']:5.1f} %)" if "out_of_focus" in r else ""
    calls += f" (no cell found {100 * r['no_cell']:5.1f} %)" if r.get("no_cell") else ""
    calls += f"  error kept {100 * r['kept_error']:5.1f} %" if r.get("kept_error") is not None else ""
    took = f"  ({seconds:.0f} s)" if seconds is not None else ""
    return (f"  {name:48} acc {100 * r['accuracy']:5.1f} %{change}  sens {100 * r['malignant_sensitivity']:5.1f} %"
            f"  spec {100 * r['benign_specificity']:5.1f} %{calls}{took}")  # fmt: skip


def run(
    bundle_path: str,
    images: list[np.ndarray],
    truth_names: list[str],
    tta: bool | None = None,
    source_px: str | None = None,
    cells_fixed: bool = False,
    pixel_scale: bool = False,
    only: list[str] | None = None,
) -> dict[str, dict[str, float]]:
    bundle = load_bundle(bundle_path)
    predictor = Predictor(bundle, tta=tta)
    if source_px is not None and predictor.crop_config is not None:
        predictor.crop_config = dataclasses.replace(predictor.crop_config, source_px=None if source_px == "none" else int(source_px))
        print(f"  crop detail cap at inference: {source_px}")
    truth = np.array([bundle.classes.index(t) for t in truth_names])
    benign = bundle.classes.index(BENIGN_CLASS)
    out: dict[str, dict[str, float]] = {}
    reference = None  # the unshifted fields' calls

    def scored(rgbs: list[np.ndarray]) -> dict[str, float]:
        """The bundle's figures on `rgbs` (the test fields, altered), and the share of calls that differ from the unshifted ones."""
        nonlocal reference
        units = [predictor.units(x) for x in rgbs]
        pred = predictor.predict_units(units)
        found = np.array([len(u) > 0 for u in units])
        change: dict[str, Any] = {"accuracy_change": 0.0, "accuracy_change_ci": [0.0, 0.0], "verdict": ""}
        if reference is None:
            reference = pred.labels
        else:
            change = accuracy_change(pred.labels == truth, reference == truth)
            if found.any() and not found.all():  # is the loss the fields left with no cell to call?
                change["with_cells"] = {
                    "fields": int(found.sum()), **figures(pred.labels[found], truth[found], benign),
                    **accuracy_change((pred.labels == truth)[found], (reference == truth)[found]),
                    **malignancy_change(pred.labels[found], reference[found], truth[found], benign),
                }
        change["no_cell"] = float((~found).mean())
        change.update(malignancy_change(pred.labels, reference, truth, benign))
        r = {**figures(pred.labels, truth, benign), **change, "changed": float((pred.labels != reference).mean()), "flagged": float(pred.abstain.mean())}
        r["moves"] = call_moves(reference, pred.labels, bundle.classes)
        kept = ~pred.abstain
        r["kept_error"] = float(1 - bundle.call_correct(pred.labels, truth)[kept].mean()) if kept.any() else None
        if bundle.focus is not None:  # the share the focus floor sends to review (also counted in flagged)
            r["out_of_focus"] = float(pred.out_of_focus.mean())
        if pred.screen is not None:  # the screening call at the bundle's validated cut
            r["screening_sensitivity"], r["screening_specificity"] = sensitivity_specificity(pred.screen, truth != benign)
        return r

    every = {**DOMAIN_SHIFTS, **OTHER_LAB_SHIFTS}
    chosen = {name: shift for name, shift in every.items() if not only or any(text in name for text in only)}
    for name, shift in {"none": lambda x: x, **chosen}.items():
        started = time.perf_counter()
        shifted = [shift(rgb) for rgb in images]
        untold = untold_pixel_scale(bundle, shifted)[0] if predictor.cell_level else None
        predictor.pixel_scale = untold
        out[name] = scored(shifted)
        predictor.pixel_scale = None
        print(_line(name, out[name], time.perf_counter() - started), flush=True)
        if "with_cells" in out[name]:
            print(_line(f"  the {out[name]['with_cells']['fields']} fields with a cell found", out[name]["with_cells"]), flush=True)
        if out[name]["changed"] >= MOVES_SHOWN_FROM:
            print("    calls moved: " + ", ".join(f"{k} {n}" for k, n in list(out[name]["moves"].items())[:3]), flush=True)
        if untold is not None:  # predict's red-cell check said another magnification: also cut as training fields' views
            out[name]["pixel_scale"] = untold
            out[name]["as_view"] = scored(shifted)
            print(f"  predict cut these at pixel scale {untold:.2f}, the scale their red cells give; as training fields' views (--pixel-size field):")
            print(_line("  as views", out[name]["as_view"]), flush=True)
        if MAGNIFICATIONS.get(name, 1.0) > 1:
            out[name]["same_view"] = scored([same_view(rgb, MAGNIFICATIONS[name]) for rgb in images])
            print(_line("  the same view, unmagnified", out[name]["same_view"]), flush=True)
        if pixel_scale and predictor.cell_level:
            estimate = estimate_pixel_scale([measure_red_cells(x) for x in shifted], bundle.training_red_cell_px)
            if estimate is not None:
                predictor.pixel_scale = estimate.pixel_scale
                same_calls = not any(resamples(x.shape, estimate.pixel_scale) for x in shifted)  # nothing resampled: the calls above
                out[name]["at_pixel_scale"] = {**(out[name] if same_calls else scored(shifted)), "pixel_scale": estimate.pixel_scale}
                out[name]["at_pixel_scale"].pop("same_view", None)
                predictor.pixel_scale = None
                print(_line(f"  at pixel scale {estimate.pixel_scale:.2f} (measured)", out[name]["at_pixel_scale"]), flush=True)
        if cells_fixed and predictor.cell_level and name in DOMAIN_SHIFTS and name not in MAGNIFICATIONS:  # the geometry kept
            fixed = predictor.predict_units([predictor.units(x, detect_on=rgb) for x, rgb in zip(shifted, images)])
            out[name]["cells_fixed"] = {
                **figures(fixed.labels, truth, benign), **accuracy_change(fixed.labels == truth, reference == truth),
                **malignancy_change(fixed.labels, reference, truth, benign),
            }
            print(_line("  cells found on the unshifted field", out[name]["cells_fixed"]), flush=True)
    shifts = [k for k in out if k in DOMAIN_SHIFTS]
    if not shifts:
        return out
    meaning = {"within": "the whole 95 % interval of the change above", "undecided": "the interval spans", "out": "the whole interval below"}
    for call, prefix in (("4-class", ""), ("benign vs malignant", "malignancy_")):
        worst = min(shifts, key=lambda k: out[k][f"{prefix}accuracy"])
        print(f"  {call}: worst {worst}, {100 * (out['none'][f'{prefix}accuracy'] - out[worst][f'{prefix}accuracy']):.1f} points below the unshifted accuracy")
        for verdict, what in meaning.items():
            named = [k for k in shifts if out[k][f"{prefix}verdict"] == verdict]
            print(f"    {verdict} ({what} -{100 * TOLERANCE:.0f} points): {len(named)} of {len(shifts)}{': ' + ', '.join(named) if named and verdict != 'within' else ''}")
    return out


def main() -> None:
    parser = bundles_and_fields_parser(__doc__.splitlines()[0])
    parser.add_argument("--tta", action=argparse.BooleanOptionalAction, help="predict as `predict --tta` does, the mean over 8 flips and rotations (default: as each bundle's thresholds were set)")
    parser.add_argument("--source-px", help="a cell bundle's crop detail cap at inference (a number of pixels, or none), in place of its own")
    parser.add_argument("--cells-fixed", action="store_true", help="also predict each shifted field with the cells found on the unshifted one")
    parser.add_argument("--pixel-scale", action="store_true", help="also predict each shifted set at the pixel scale its red cells give (predict --pixel-size auto)")
    parser.add_argument("--shift", action="append", help="run only the shifts whose name holds this text (repeatable)")
    parser.add_argument("--out", help="write every figure as JSON")
    args = parser.parse_args()
    truth, images = split_fields(args)
    results = {}
    for b in args.bundles:
        print(b)
        results[b] = run(b, images, truth, args.tta, args.source_px, args.cells_fixed, args.pixel_scale, args.shift)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
