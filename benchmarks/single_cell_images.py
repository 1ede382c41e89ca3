"""Single-cell images as another laboratory sends them: does a cell bundle call a cell alike in its field and alone, magnified?

Usage: python benchmarks/single_cell_images.py BUNDLE [BUNDLE ...] --splits SPLITS [--data DATA]
       [--every 5] [--window 90] [--magnification 4] [--jpeg 80] [--fields-only]

Every detected cell of the test split's fields (every Nth field) whose `--window` px square lies inside its field
becomes one image: that square, with the cell and whatever neighbours and red cells share it,
enlarged `--magnification` x (bicubic, as an oil objective shows a cell) and JPEG-recompressed. Each
bundle predicts the image three ways: taken as a training field's field of view (`predict --pixel-size
field`), at the known pixel scale, and at the pixel scale its red cells give over the whole set (`predict
--pixel-size auto`); and a fourth where `predict` without `--pixel-size` (its red-cell check on up to 50 of
the images) takes another scale than these. Printed per way: the share of the cells of malignant fields,
and of benign fields, that are called malignant (p(Benign) < 0.5 for the cell under the image's centre),
against the same cells' calls in their own fields, and the share of the images that `predict` calls malignant (its
call on every cell it finds in the image, pooled). Printed first: how well the cells' own calls in their fields
rank malignant fields' cells above benign fields' (AUROC), and what share of the former a cut keeps that calls at
most 10 % of the latter malignant (issue 17's target for another laboratory's lymphocytes); then the same calls by
the cell's size in red cells of its fields (a small lymphocyte is about one across, a lymphoblast 1.5-3).
`--fields-only` stops there.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from leukoscope.cells.ruler import estimate_pixel_scale, measure_red_cells
from leukoscope.config import BENIGN_CLASS
from leukoscope.data.images import read_rgb
from leukoscope.data.shifts import jpeg
from leukoscope.evaluation.evaluate import labelled_paths
from leukoscope.inference.pixel_scale import untold_pixel_scale
from leukoscope.inference.predictor import Predictor
from leukoscope.scoring.bundle import load_bundle
from leukoscope.scoring.calibration import softmax

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "taleqani-all"


def p_malignant(predictor: Predictor, units: np.ndarray) -> np.ndarray:
    """Each cell's probability of not being Benign, from its own logits (calibrated by the bundle's temperature)."""
    logits, _ = predictor.logits_and_features(units)
    probs = softmax(logits, predictor.bundle.temperature)
    return 1 - probs[:, predictor.bundle.classes.index(BENIGN_CLASS)]


SIZE_BINS = (1.25, 1.5)  # red cells across: about one (a small lymphocyte), between, a lymphoblast's 1.5 and more


def single_cell_images(predictor: Predictor, fields: list[np.ndarray], window: int, magnification: float, quality: int) -> list[tuple[int, float, float, np.ndarray]]:
    """(field index, the cell's p(malignant) in its field, its diameter in field px, its single-cell image) for every cell
    whose window fits its field."""
    side = int(round(window * magnification))
    out = []
    for k, rgb in enumerate(fields):
        units, found = predictor.cell_units(rgb)
        if not len(units):
            continue
        in_field = p_malignant(predictor, units)
        h, w = rgb.shape[:2]
        for i, cell in enumerate(found.cells):
            x0, y0 = int(round(cell.x - window / 2)), int(round(cell.y - window / 2))
            if x0 < 0 or y0 < 0 or x0 + window > w or y0 + window > h:
                continue
            enlarged = cv2.resize(rgb[y0 : y0 + window, x0 : x0 + window], (side, side), interpolation=cv2.INTER_CUBIC)
            out.append((k, float(in_field[i]), 2 * cell.radius, jpeg(enlarged, quality)))
    return out


def centre_cell(predictor: Predictor, image: np.ndarray) -> tuple[int | None, np.ndarray]:
    """The image's units, and which of them is the detected cell under its centre (None when no cell covers it)."""
    units, found = predictor.cell_units(image)
    if not len(units):
        return None, units
    h, w = image.shape[:2]
    distances = [np.hypot(c.x - w / 2, c.y - h / 2) for c in found.cells]
    j = int(np.argmin(distances))
    return (j if distances[j] < found.cells[j].radius else None), units


def print_cell_operating_point(p: np.ndarray, malignant: np.ndarray, false_alarms: float = 0.10) -> None:
    """How well the cells' own calls in their fields separate malignant fields' cells from benign fields', and how many
    of the former a cut that calls at most `false_alarms` of the latter malignant keeps: the issue's target for another
    laboratory's single cells (lymphoblasts >= 80 % malignant, lymphocytes <= 10 %), on field labels given to cells."""
    from sklearn.metrics import roc_auc_score, roc_curve

    if malignant.all() or not malignant.any():
        return
    fpr, tpr, cut = roc_curve(malignant, p)
    i = int(np.searchsorted(fpr, false_alarms, side="right")) - 1
    print(
        f"  cells in their fields: AUROC {roc_auc_score(malignant, p):.3f}; a cut calling {100 * fpr[i]:.1f} % of benign fields' cells malignant "
        f"(p(malignant) >= {cut[i]:.3f}) calls {100 * tpr[i]:.1f} % of malignant fields' cells malignant"
    )


def print_calls_by_size(p: np.ndarray, malignant: np.ndarray, red_cells: np.ndarray) -> None:
    """The share of cells called malignant in their fields, by their diameter in red cells: does the model call a
    lymphocyte-sized cell of a benign field malignant as often as a blast-sized one, and does it rank cells by more
    than their size (AUROC of the size alone, and of the calls within each size)?"""
    from sklearn.metrics import roc_auc_score

    if malignant.all() or not malignant.any():
        return
    print(f"  the cells' size alone ranks malignant fields' cells above benign fields' at AUROC {roc_auc_score(malignant, red_cells):.3f}")
    edges = (0.0, *SIZE_BINS, np.inf)
    for lo, hi in zip(edges[:-1], edges[1:]):
        size = (red_cells >= lo) & (red_cells < hi)
        called = [
            f"{group} fields' {100 * np.mean(p[size & (malignant == wanted)] > 0.5):5.1f} % of {int(np.sum(size & (malignant == wanted)))}"
            if np.any(size & (malignant == wanted)) else f"{group} fields' none"
            for group, wanted in (("benign", False), ("malignant", True))
        ]
        both = size.any() and 0 < malignant[size].mean() < 1
        ranked = f"; AUROC within {roc_auc_score(malignant[size], p[size]):.3f}" if both else ""
        span = f"< {hi:g}" if lo == 0 else f">= {lo:g}" if hi == np.inf else f"{lo:g}-{hi:g}"
        print(f"  cells {span:>9} red cells across called malignant in their fields: {', '.join(called)}{ranked}", flush=True)


def run(
    bundle_path: str, fields: list[np.ndarray], malignant: np.ndarray, red_cell_px: float, window: int, magnification: float, quality: int, fields_only: bool
) -> None:
    predictor = Predictor(load_bundle(bundle_path))
    images = single_cell_images(predictor, fields, window, magnification, quality)
    print(f"{bundle_path}: {len(images)} cells whose {window}-px window lies inside their field")
    p_field, cell_malignant = np.array([p for _, p, _, _ in images]), np.array([malignant[k] for k, *_ in images])
    print_cell_operating_point(p_field, cell_malignant)
    print_calls_by_size(p_field, cell_malignant, np.array([d for _, _, d, _ in images]) / red_cell_px)
    if fields_only:
        return
    estimate = estimate_pixel_scale([measure_red_cells(img) for *_, img in images], predictor.bundle.training_red_cell_px)
    print(f"  their single-cell images, {magnification:g} x; measured: {estimate.describe() if estimate else 'no pixel scale'}", flush=True)
    ways = {"as a field of view": None, "at the known pixel scale": magnification}
    if estimate is not None:
        ways["at the measured pixel scale"] = estimate.pixel_scale
    untold = untold_pixel_scale(predictor.bundle, [img for *_, img in images])[0]
    print(f"  predict without --pixel-size: {'each image as a field of view' if untold is None else f'pixel scale {untold:.2f}'}")
    if untold not in ways.values():
        ways["as predict without --pixel-size"] = untold
    for name, scale in ways.items():
        started = time.perf_counter()
        predictor.pixel_scale = scale
        centres, units = zip(*(centre_cell(predictor, img) for *_, img in images))
        pred = predictor.predict_units(units)
        benign = predictor.bundle.classes.index(BENIGN_CLASS)
        first_unit = np.cumsum([0, *pred.units])
        alone = [None if j is None else float(1 - pred.unit_probs[first_unit[i] + j, benign]) for i, j in enumerate(centres)]
        # the image's own call, as `predict` reports it: every cell found in it pooled (flagged images included)
        image_malignant = pred.labels != benign
        has_cell = pred.units > 0
        for group, wanted in (("malignant", True), ("benign", False)):
            rows = [(p_field, p) for (k, p_field, _, _), p in zip(images, alone) if malignant[k] == wanted]
            found = [p for _, p in rows if p is not None]
            chosen = np.array([malignant[k] == wanted for k, *_ in images]) & has_cell
            print(
                f"  {name:28} cells of {group} fields called malignant: in their field {100 * np.mean([p > 0.5 for p, _ in rows]):5.1f} %, "
                f"alone {100 * np.mean(np.array(found) > 0.5):5.1f} % ({len(found)} of {len(rows)} found under the centre); "
                f"the image's call {100 * np.mean(image_malignant[chosen]):5.1f} % (of {int(chosen.sum())} with a cell found)"
            )
        print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="+")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--splits", required=True)
    parser.add_argument("--every", type=int, default=5, help="keep every Nth field")
    parser.add_argument("--window", type=int, default=90, help="the single-cell image's side in field pixels (about 6 red cells)")
    parser.add_argument("--magnification", type=float, default=4.0, help="how much the window is enlarged")
    parser.add_argument("--jpeg", type=int, default=80, help="JPEG quality of the single-cell images")
    parser.add_argument("--fields-only", action="store_true", help="only the cells' calls in their fields, not the single-cell images'")
    args = parser.parse_args()
    paths, truth = labelled_paths(load_bundle(args.bundles[0]), args.data, args.splits, "test")
    paths, truth = paths[:: args.every], truth[:: args.every]
    fields = [read_rgb(p) for p in paths]
    malignant = np.array([t != BENIGN_CLASS for t in truth])
    ruler = estimate_pixel_scale([measure_red_cells(rgb) for rgb in fields])  # the fields' red cells, the cells' size in them
    if ruler is None:
        raise SystemExit("the test fields' red cells could not be measured: no size to read the cells by")
    print(f"test fields: {len(fields)}; their red cells {ruler.red_cell_px:.1f} px across (median over {ruler.measured})")
    for bundle in args.bundles:
        run(bundle, fields, malignant, ruler.red_cell_px, args.window, args.magnification, args.jpeg, args.fields_only)


if __name__ == "__main__":
    main()
