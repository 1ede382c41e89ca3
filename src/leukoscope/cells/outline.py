"""Cell outlines moved in or out by a chosen distance: what another detector, stain or camera does to them.

Where the detector puts a cell's outline depends on the image: a hue turn, a recompression or a blur
moves all of a field's outlines by a fraction of a pixel to a pixel and a half. The outline sets where
a cell is cut from its surroundings and, for a stain-normalised model, which pixels the stain transfer
is fitted on; a model that has seen one outline per cell reads both, and with every outline drawn 2 px
tighter it called 92 % of malignant fields Benign (BENCHMARKS.md, issue 17, "Where the detector draws
the outline"). The shortcut checks move the outlines (`outlines_moved_by`); training can cut crops
along moved outlines (`jitter_outlines`, `cells.outline_jitter`) and fit the stain transfer on the
cells' cores (`cell_cores`, `cells.stain_fit`), which the outline barely moves.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from leukoscope.cells.detect import Cell

Outlines = Callable[[np.ndarray, float], np.ndarray]  # a label image and its scale -> the same cells, outlines redrawn
CELL_JITTER_PX = 0.5  # how much more or less than the field's outlines one cell's outline moves in training
CORE_FRACTION = 0.5  # a cell's core: its pixels at least this share of its greatest depth inside the outline


def moved_outline(cell: np.ndarray, distance: float, free: np.ndarray) -> np.ndarray:
    """The boolean mask `cell` with its outline moved out by `distance` px (in where negative), into `free`
    pixels only. A cell that a move inwards would erase keeps its outline.

    The outline runs half a pixel outside the centres of the cell's edge pixels, so a pixel whose centre
    lies k px from the nearest pixel on the other side lies k - 0.5 px from the outline."""
    if distance < 0:
        depth = cv2.distanceTransform(cell.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        inner = depth - 0.5 > -distance
        return inner if inner.any() else cell
    reach = cv2.distanceTransform((~cell).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return cell | ((reach - 0.5 <= distance) & free)


def move_outlines(labels: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """`labels` (0 = background, i = cell i) with cell i's outline moved out by `distances[i - 1]` px (in where
    negative). No cell is lost, and none grows over another."""
    out = labels.copy()
    pad = int(np.ceil(np.abs(distances).max(initial=0))) + 1
    h, w = labels.shape
    for i, distance in enumerate(distances, 1):
        ys, xs = np.nonzero(labels == i)
        if not len(ys) or not distance:
            continue
        y0, y1, x0, x1 = max(0, ys.min() - pad), min(h, ys.max() + 1 + pad), max(0, xs.min() - pad), min(w, xs.max() + 1 + pad)
        window = out[y0:y1, x0:x1]
        cell = labels[y0:y1, x0:x1] == i
        moved = moved_outline(cell, float(distance), free=window == 0)
        window[cell & ~moved] = 0
        window[moved] = i
    return out


def outline_changes(before: tuple[list[Cell], np.ndarray], after: tuple[list[Cell], np.ndarray], match_px: float) -> tuple[np.ndarray, np.ndarray]:
    """How the outlines of one field's cells moved between two detections (each its cells and label image): for
    every cell of `before` found again in `after` (its centre within `match_px`), the change of its equivalent
    radius in px and the IoU of its two masks."""
    (cells_before, labels_before), (cells_after, labels_after) = before, after
    changes, ious = [], []
    for i, cell in enumerate(cells_before):
        distances = [np.hypot(cell.x - c.x, cell.y - c.y) for c in cells_after]
        if not distances or min(distances) > match_px:
            continue
        a, b = labels_before == i + 1, labels_after == int(np.argmin(distances)) + 1
        changes.append(np.sqrt(b.sum() / np.pi) - np.sqrt(a.sum() / np.pi))
        ious.append((a & b).sum() / (a | b).sum())
    return np.array(changes), np.array(ious)


def outlines_moved_by(distance: float) -> Outlines:
    """Every outline moved out by `distance` px of a 224 px development field (in where negative), at any image's scale."""

    def moved(labels: np.ndarray, scale: float) -> np.ndarray:
        return move_outlines(labels, np.full(int(labels.max()), distance * scale))

    return moved


def as_detected(labels: np.ndarray, scale: float) -> np.ndarray:
    """The outlines as the detector drew them."""
    return labels


def jitter_outlines(labels: np.ndarray, rng: np.random.Generator, max_px: float, cell_px: float = CELL_JITTER_PX) -> np.ndarray:
    """`labels` with all its outlines moved together by a distance drawn uniformly from [-max_px, max_px], and
    each cell's by up to `cell_px` more or less: a camera, a stain or a recompression moves a field's outlines
    the same way (JPEG 30: 0.5 px in on average), and the stain transfer, fitted on the field's cells, with them."""
    field = rng.uniform(-max_px, max_px)
    return move_outlines(labels, field + rng.uniform(-cell_px, cell_px, int(labels.max())))


def cell_cores(labels: np.ndarray, fraction: float = CORE_FRACTION) -> np.ndarray:
    """The pixels of each cell at least `fraction` of its greatest depth inside its outline: a pixel's move
    of the outline barely changes which of them are in, nor their colours (the nucleus's inner part)."""
    cores = np.zeros(labels.shape, bool)
    for i in range(1, int(labels.max()) + 1):
        ys, xs = np.nonzero(labels == i)
        if not len(ys):
            continue
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        depth = cv2.distanceTransform(np.pad(labels[y0:y1, x0:x1] == i, 1).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
        cores[y0:y1, x0:x1] |= depth >= fraction * depth.max()
    return cores
