"""Shortcut checks: does the model look at the leukocytes, or at the annotation and the background?

(a) the lower-right annotation masked: accuracy should not fall;
(b) the leukocytes removed (refilled from the field's own red cells and plasma): accuracy should fall to chance;
(c) each field's leukocytes pasted onto the background of another class: predictions should not change.
    For a cell-level model the swap is also scored with the cells found on the original field, which
    separates the classifier (does it read the crop's surroundings?) from the detector (does the
    background move what it finds?).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from leukoscope.cells.swap import remove_leukocytes, swap_background, swap_partners
from leukoscope.data.images import read_rgb
from leukoscope.errors import ImageError
from leukoscope.inference.predictor import Predictor
from leukoscope.preprocess.steps import mask_annotation
from leukoscope.progress import progress
from leukoscope.scoring.intervals import wilson

ANNOTATION_TOLERANCE = 0.02  # masking the scale bar may cost at most 2 points
BACKGROUND_MARGIN = 0.10  # with no leukocyte left, the CI's lower bound must not clear chance by 10 points
SWAP_TOLERANCE = 0.01  # a background swap may change at most 1 % of predictions


def _accuracy_with(
    predictor: Predictor, images: list[np.ndarray], labels: np.ndarray, transform: Any, desc: str, detect_on_original: bool = False
) -> tuple[dict[str, Any], np.ndarray]:
    units = [
        predictor.units(transform(i, rgb), require_cells=False, detect_on=rgb if detect_on_original else None)
        for i, rgb in enumerate(progress(images, desc))
    ]
    pred = predictor.predict_units(units).labels
    correct = int((pred == labels).sum())
    return {"n": len(labels), "accuracy": correct / len(labels), "accuracy_ci": list(wilson(correct, len(labels)))}, pred


def run_shortcut_checks(predictor: Predictor, paths: list[str], truth: list[str], seed: int = 0) -> dict[str, Any]:
    """Accuracy as is, with the annotation masked, with the leukocytes removed and with the
    background swapped for another class's, plus warnings when the model fails a check."""
    bundle = predictor.bundle
    images, kept = [], []
    for path, label in zip(paths, truth):
        try:
            images.append(read_rgb(path, max_pixels=bundle.pipeline.config.max_pixels))
            kept.append(label)
        except ImageError:
            continue
    labels = np.array([bundle.classes.index(t) for t in kept])
    chance = max(Counter(kept).values()) / len(kept)
    partners = swap_partners(kept, seed)
    normal, normal_pred = _accuracy_with(predictor, images, labels, lambda i, x: x, "shortcut check: normal")
    annot, _ = _accuracy_with(predictor, images, labels, lambda i, x: mask_annotation(x), "shortcut check: annotation")
    cells, _ = _accuracy_with(predictor, images, labels, lambda i, x: remove_leukocytes(x), "shortcut check: leukocytes")
    swaps = [swap_background(x, images[partners[i]]) for i, x in enumerate(images)]
    swapped, swapped_pred = _accuracy_with(predictor, images, labels, lambda i, x: swaps[i], "shortcut check: background swap")
    swapped["changed"] = float((swapped_pred != normal_pred).mean())
    results = {
        "normal": {**normal, "expect": "the reported figure"},
        "annotation masked": {**annot, "expect": "no drop"},
        "leukocytes masked": {**cells, "expect": f"about chance ({100 * chance:.0f} %)"},
        "background swapped": {**swapped, "expect": f"the same predictions (≤ {100 * SWAP_TOLERANCE:.0f} % changed)"},
    }
    if predictor.cell_level:
        fixed, fixed_pred = _accuracy_with(predictor, images, labels, lambda i, x: swaps[i], "shortcut check: swap, cells fixed", detect_on_original=True)
        fixed["changed"] = float((fixed_pred != normal_pred).mean())
        results["background swapped, cells as found before"] = {**fixed, "expect": "classifier alone: no change"}
    warnings = []
    if annot["accuracy"] < normal["accuracy"] - ANNOTATION_TOLERANCE:
        warnings.append(
            f"accuracy falls from {100 * normal['accuracy']:.1f} % to {100 * annot['accuracy']:.1f} % when the lower-right annotation is masked: "
            "the model uses the scale bar"
        )
    if cells["accuracy_ci"][0] > chance + BACKGROUND_MARGIN:
        warnings.append(
            f"with every leukocyte removed the model still scores {100 * cells['accuracy']:.1f} % (chance {100 * chance:.0f} %): "
            "it learned the background (focus, illumination, stain), not the cells"
        )
    if swapped["changed"] > SWAP_TOLERANCE:
        warnings.append(
            f"{100 * swapped['changed']:.1f} % of predictions change when each field's leukocytes are pasted onto another class's background "
            f"(accuracy {100 * swapped['accuracy']:.1f} %): the background decides"
        )
    return {"chance": chance, "results": results, "warnings": warnings, "passed": not warnings}
