"""Nucleus outlines redrawn where the field's lightness puts the edge, so that a recompression cannot move them.

The stain score that finds the nuclei, (R + B) / 2 - G, is pure chroma: 1.42 Cr + 1.23 Cb in JPEG's
YCbCr. JPEG keeps chroma at half the resolution and quantises it coarsely, so on a recompressed field
the score's edges soften, and every nucleus cut at half its own peak came out smaller: JPEG 30 drew
the outlines 0.49 px in on average (74 training fields), and a model that reads the outline as the
cell's size called more fields Benign. Lightness keeps its edges under JPEG. A guided filter (He, Sun
and Tang, "Guided image filtering", 2013) fits the stain score, in each small window, as a linear
function of the lightness and so carries the lightness's edges into the score. Each nucleus the
detector found is then cut again at half its own peak of that guided score, within `GUIDE_REACH` px
of its first outline. The filter's window statistics are taken over the nuclei grown by that reach
only: what lies further out, the plasma and the red cells that a background swap replaces, does
not enter. Measured on those 74 fields, JPEG 30 moved the guided outlines by -0.01 px (mean absolute
0.38 px, against 0.67), and the cells a background swap moved stayed those of the stain-score outline
(`benchmarks/outline_shift.py`, `benchmarks/detection_swap.py`; BENCHMARKS.md, issue 17).
"""

from __future__ import annotations

import cv2
import numpy as np

# px of a 224 px development field
GUIDE_REACH = 2.0  # how far a nucleus' outline may move, and how far beyond it the filter looks
GUIDE_RADIUS = 4.0  # the filter's window radius
GUIDE_BLUR = 1.5  # the lightness is smoothed by this sigma first: its own JPEG blocks must not become edges
GUIDE_EPS = 10.0  # the filter's regularisation, in squared grey levels: below this lightness variance a window is flat


def disc(radius: float) -> np.ndarray:
    side = 2 * max(1, int(round(radius))) + 1
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))


def guided_score(rgb: np.ndarray, score: np.ndarray, within: np.ndarray, scale: float) -> np.ndarray:
    """`score` (per pixel, unblurred) carried onto the lightness's edges by a guided filter whose windows
    see the pixels of `within` only; 0 outside `within`."""
    grey = cv2.GaussianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), GUIDE_BLUR * scale)
    weight = within.astype(np.float32)
    side = 2 * max(1, int(round(GUIDE_RADIUS * scale))) + 1

    def window_sum(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, (side, side), normalize=False, borderType=cv2.BORDER_CONSTANT)

    count = np.maximum(window_sum(weight), 1e-3)

    def window_mean(x: np.ndarray) -> np.ndarray:
        return window_sum(x * weight) / count

    mean_grey, mean_score = window_mean(grey), window_mean(score)
    slope = (window_mean(grey * score) - mean_grey * mean_score) / (window_mean(grey * grey) - mean_grey**2 + GUIDE_EPS)
    offset = mean_score - slope * mean_grey
    return (window_mean(slope) * grey + window_mean(offset)) * weight


def lightness_guided_outlines(rgb: np.ndarray, score: np.ndarray, nuclei: np.ndarray, scale: float, peak_fraction: float) -> np.ndarray:
    """`nuclei` (int label image, 0 = background) with each nucleus cut again at `peak_fraction` of its own peak
    of the guided stain score, within `GUIDE_REACH` px of its outline and never over another nucleus.
    `score` is the unblurred stain score; the guided one is blurred as the detector blurs its own."""
    reach = GUIDE_REACH * scale
    near = cv2.dilate((nuclei > 0).astype(np.uint8), disc(reach)).astype(bool)
    guided = cv2.GaussianBlur(guided_score(rgb, score, near, scale), (0, 0), max(0.8, scale))
    out = np.zeros_like(nuclei)
    h, w = nuclei.shape
    pad = int(np.ceil(reach)) + 2
    for label in np.unique(nuclei[nuclei > 0]):
        ys, xs = np.nonzero(nuclei == label)
        y0, y1, x0, x1 = max(0, ys.min() - pad), min(h, ys.max() + 1 + pad), max(0, xs.min() - pad), min(w, xs.max() + 1 + pad)
        window = nuclei[y0:y1, x0:x1]
        own = (window == label).astype(np.uint8)
        zone = cv2.dilate(own, disc(reach)).astype(bool) & ((window == 0) | (window == label))
        core = cv2.erode(own, disc(scale)).astype(bool)
        core = core if core.any() else own.astype(bool)
        local = guided[y0:y1, x0:x1]
        above = (zone & (local > peak_fraction * local[own.astype(bool)].max())).astype(np.uint8)
        _, parts = cv2.connectedComponents(above, connectivity=8)
        touching = np.unique(parts[core & (parts > 0)])
        kept = np.isin(parts, touching[touching > 0]).astype(np.uint8)
        contours, _ = cv2.findContours(kept, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        filled = np.zeros_like(kept)
        cv2.drawContours(filled, contours, -1, 1, thickness=-1)
        redrawn = filled.astype(bool) & zone
        if redrawn.sum() < own.sum() / 4:  # the guided score lost this nucleus: keep the detector's outline
            redrawn = own.astype(bool)
        target = out[y0:y1, x0:x1]
        target[redrawn & (target == 0)] = label
    return out
