"""How far do the detector's outlines move under another camera, and what does an outline moved by a pixel do to a bundle's calls?

Usage: python benchmarks/outline_shift.py BUNDLE [BUNDLE ...] --splits SPLITS [--data DATA] [--split test] [--every N]
       [--distances -2 -1 1 2] [--no-shifts] [--decompose]

First, for each acquisition shift that keeps the geometry (hue, saturation, white balance, gamma, blur,
JPEG), the cells found on the shifted field are matched to those found on the field as imaged (centres
within 3 px), and the change of their equivalent radius is printed (mean, mean absolute, 10th and 90th
percentiles, in px of a 224 px development field) with the mask IoU, for each of the detector's outline rules
(`DetectionConfig.outline`). Then, per bundle, the test fields'
calls with every detected outline moved in or out by each distance (`cells.outline.outlines_moved_by`; the
cells, their centres and the crops' scale unchanged): 4-class accuracy, malignant sensitivity, benign
specificity and the share of calls changed. A model that reads morphology keeps its calls when the
outline moves by a pixel; one that has learned the detector's outline as the cell's size does not.
An outline sets two things: where the cell is cut from its surroundings, and, for a stain-normalised
bundle, which pixels the stain transfer is fitted on. `--decompose` moves each alone as well.
"""

from __future__ import annotations

import numpy as np
from cell_bundle_args import bundles_and_fields_parser, load_cell_bundle, split_fields
from domain_shift import figures

from leukoscope.cells.detect import DetectionConfig, detect_leukocytes, field_scale
from leukoscope.cells.outline import as_detected, outline_changes, outlines_moved_by
from leukoscope.config import BENIGN_CLASS
from leukoscope.data.shifts import DOMAIN_SHIFTS, MAGNIFICATIONS
from leukoscope.inference.predictor import Predictor

MATCH_PX = 3.0  # a cell found again: its centre within this many px of the unshifted field's


def outline_movement(images: list[np.ndarray]) -> None:
    """The matched cells' radius change and mask IoU under each shift that keeps the geometry, per outline rule."""
    for outline in ("stain score", "lightness guided"):
        print(f"the detector's outlines under each shift, drawn on the {outline} (matched cells; px of a 224 px field)")
        detection = DetectionConfig(outline=outline)
        scales = [field_scale(rgb.shape) for rgb in images]
        found = [detect_leukocytes(rgb, detection, scale) for rgb, scale in zip(images, scales)]
        for name, shift in DOMAIN_SHIFTS.items():
            if name in MAGNIFICATIONS or name == "grey":
                continue
            change, iou = [], []
            for rgb, scale, before in zip(images, scales, found):
                moved, overlap = outline_changes(before, detect_leukocytes(shift(rgb), detection, scale), MATCH_PX * scale)
                change.append(moved / scale)
                iou.append(overlap)
            r, cells = np.concatenate(change), sum(len(cells) for cells, _ in found)
            print(
                f"  {name:40s} {len(r):5d} of {cells} cells found again   radius change {r.mean():+.2f} px, |{np.abs(r).mean():.2f}|, "
                f"10th/90th percentile {np.percentile(r, 10):+.2f} / {np.percentile(r, 90):+.2f}   IoU {np.concatenate(iou).mean():.3f}",
                flush=True,
            )


def moved_outline_calls(bundle_path: str, images: list[np.ndarray], truth_names: list[str], distances: list[float], decompose: bool) -> None:
    bundle = load_cell_bundle(bundle_path)
    predictor = Predictor(bundle)
    truth = np.array([bundle.classes.index(t) for t in truth_names])
    benign = bundle.classes.index(BENIGN_CLASS)
    parts = ["both", "cut", "stain fit"] if decompose and predictor.crop_config.stain_target is not None else ["both"]
    reference = None
    for distance in [0.0, *distances]:
        for part in parts if distance else ["both"]:
            moved = outlines_moved_by(distance)
            cut, fit = {"both": (moved, None), "cut": (moved, as_detected), "stain fit": (as_detected, moved)}[part]
            units = [predictor.units(rgb, outlines=cut, fit_outlines=fit) for rgb in images]
            labels = predictor.predict_units(units).labels
            reference = labels if reference is None else reference
            r = figures(labels, truth, benign)
            which = "" if part == "both" else f", {part} only"
            print(
                f"  outlines {distance:+.1f} px{which:16s} acc {100 * r['accuracy']:5.1f} %  sens {100 * r['malignant_sensitivity']:5.1f} %  "
                f"spec {100 * r['benign_specificity']:5.1f} %  calls changed {100 * (labels != reference).mean():5.1f} %",
                flush=True,
            )


def main() -> None:
    parser = bundles_and_fields_parser(__doc__.splitlines()[0])
    parser.add_argument("--distances", type=float, nargs="+", default=[-2.0, -1.0, 1.0, 2.0], help="px of a 224 px field; negative: inwards")
    parser.add_argument("--no-shifts", action="store_true", help="skip the outlines' movement under the acquisition shifts")
    parser.add_argument(
        "--decompose", action="store_true", help="also move only where the cells are cut, or only what the stain transfer is fitted on"
    )
    args = parser.parse_args()
    truth, images = split_fields(args)
    if not args.no_shifts:
        outline_movement(images)
    for b in args.bundles:
        print(b)
        moved_outline_calls(b, images, truth, args.distances, args.decompose)


if __name__ == "__main__":
    main()
