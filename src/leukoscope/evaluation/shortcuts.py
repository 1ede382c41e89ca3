"""Shortcut checks: does the model look at the leukocytes, or at the annotation and the background?

(a) the lower-right annotation masked: accuracy should not fall;
(b) the leukocytes removed (refilled from the field's own red cells and plasma): accuracy should fall to chance;
(c) each field's leukocytes pasted onto the background of another class: predictions should not change.
    For a cell-level model the swap is also scored with the cells found on the original field, which
    separates the classifier (does it read the crop's surroundings?) from the detector (does the
    background move what it finds?);
(d) each field's leukocytes re-stained to the stain of another class's leukocytes (the stain swap):
    a model that reads morphology keeps its predictions (at most 5 % may change);
(e) for a cell-level model, every detected outline drawn 1 px in, and 1 px out: where the detector puts
    an outline moves by about that much with the camera, the stain or a recompression, so a model
    that reads the cells keeps its predictions (at most 5 % may change).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from leukoscope.cells.detect import DetectionConfig, leukocyte_pixels
from leukoscope.cells.outline import Outlines, outlines_moved_by
from leukoscope.cells.stain import class_stain_targets
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
STAIN_TOLERANCE = 0.05  # a stain swap may change at most 5 % of predictions
OUTLINE_MOVE_PX = 1.0  # px of a 224 px development field: about what a camera or a recompression moves the detector's outlines by
OUTLINE_TOLERANCE = 0.05  # outlines moved by that much may change at most 5 % of predictions
PREVIEW_FIELDS = 6


def _accuracy_with(
    predictor: Predictor, images: list[np.ndarray], labels: np.ndarray, transform: Any, desc: str, detect_on_original: bool = False, outlines: Outlines | None = None
) -> tuple[dict[str, Any], np.ndarray]:
    units = [
        predictor.units(transform(i, rgb), require_cells=False, detect_on=rgb if detect_on_original else None, outlines=outlines)
        for i, rgb in enumerate(progress(images, desc))
    ]
    pred = predictor.predict_units(units).labels
    correct = int((pred == labels).sum())
    return {"n": len(labels), "accuracy": correct / len(labels), "accuracy_ci": list(wilson(correct, len(labels)))}, pred


def run_shortcut_checks(predictor: Predictor, paths: list[str], truth: list[str], seed: int = 0, preview: str | Path | None = None) -> dict[str, Any]:
    """Accuracy as is, with the annotation masked, with the leukocytes removed, with the background
    swapped for another class's and with the leukocytes re-stained as another class's, plus warnings
    when the model fails a check. `preview` names a PNG to write: a few fields under each swap."""
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
    # the cells are those the bundle itself finds: a swap that recoloured or kept other pixels than its crops show
    # would leave a ring of the field's own colour at each cell's edge
    detection = predictor.detection or DetectionConfig()
    normal, normal_pred = _accuracy_with(predictor, images, labels, lambda i, x: x, "shortcut check: normal")
    annot, _ = _accuracy_with(predictor, images, labels, lambda i, x: mask_annotation(x), "shortcut check: annotation")
    cells, _ = _accuracy_with(predictor, images, labels, lambda i, x: remove_leukocytes(x), "shortcut check: leukocytes")
    swaps = [swap_background(x, images[partners[i]], detection) for i, x in enumerate(images)]
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
    masks = [leukocyte_pixels(x, detection) for x in images]
    targets = class_stain_targets(images, kept, seed, masks)

    def restained(keep_lightness: bool) -> list[np.ndarray]:
        donors = [targets.get(kept[partners[i]]) for i in range(len(images))]
        return [d.restain(x, m, keep_lightness) if d is not None else x for x, m, d in zip(images, masks, donors)]

    full, colour_only = restained(False), restained(True)
    # the cells are cut where they were found before the swap: the classifier is judged, not the detector
    stained, stained_pred = _accuracy_with(predictor, images, labels, lambda i, x: full[i], "shortcut check: stain swap", detect_on_original=True)
    stained["changed"] = float((stained_pred != normal_pred).mean())
    results["stain swapped"] = {**stained, "expect": f"the same predictions (≤ {100 * STAIN_TOLERANCE:.0f} % changed)"}
    hue, hue_pred = _accuracy_with(predictor, images, labels, lambda i, x: colour_only[i], "shortcut check: stain colour swap", detect_on_original=True)
    hue["changed"] = float((hue_pred != normal_pred).mean())
    results["stain colour swapped, lightness kept"] = {**hue, "expect": "a colour-blind model: no change"}
    if predictor.cell_level:
        for direction, sign in (("in", -1), ("out", 1)):
            moved = outlines_moved_by(sign * OUTLINE_MOVE_PX)
            outlined, outlined_pred = _accuracy_with(predictor, images, labels, lambda i, x: x, f"shortcut check: outlines {direction}", outlines=moved)
            outlined["changed"] = float((outlined_pred != normal_pred).mean())
            results[f"outlines drawn {OUTLINE_MOVE_PX:g} px {direction}"] = {
                **outlined, "expect": f"the same predictions (≤ {100 * OUTLINE_TOLERANCE:.0f} % changed)"
            }
    if preview is not None:
        results["stain swapped"]["preview"] = Path(preview).name
        write_swap_preview(images, swaps, full, kept, partners, preview)
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
    if stained["changed"] > STAIN_TOLERANCE:
        warnings.append(
            f"{100 * stained['changed']:.1f} % of predictions change when each field's leukocytes are re-stained as another class's "
            f"(accuracy {100 * stained['accuracy']:.1f} %): the cells' stain, not their morphology, decides"
        )
    for name, result in results.items():
        if name.startswith("outlines drawn") and result["changed"] > OUTLINE_TOLERANCE:
            warnings.append(
                f"{100 * result['changed']:.1f} % of predictions change with every leukocyte's {name} (accuracy {100 * result['accuracy']:.1f} %): "
                "the model reads where the detector drew the outline, which moves with the camera and the stain"
            )
    return {"chance": chance, "results": results, "warnings": warnings, "passed": not warnings}


def write_swap_preview(
    images: list[np.ndarray], swaps: list[np.ndarray], restained: list[np.ndarray], labels: list[str], partners: list[int], out: str | Path
) -> Path:
    """Rows of fields: original | background swapped | stain swapped, one class after another."""
    import cv2

    from leukoscope.io_utils import atomic_write

    side = 160
    by_class = {c: [i for i, lab in enumerate(labels) if lab == c] for c in sorted(set(labels))}
    chosen = [idx[k] for k in range(PREVIEW_FIELDS) for idx in by_class.values() if k < len(idx)][:PREVIEW_FIELDS]  # classes in turn
    rows = []
    for i in chosen:
        tiles = [cv2.resize(x, (side, side), interpolation=cv2.INTER_AREA) for x in (images[i], swaps[i], restained[i])]
        row = np.hstack(tiles)
        cv2.putText(row, f"{labels[i]} | background of {labels[partners[i]]} | stain of {labels[partners[i]]}", (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
        rows.append(row)
    grid = np.vstack(rows)
    with atomic_write(out, "wb") as fh:
        fh.write(cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))[1].tobytes())
    return Path(out)
