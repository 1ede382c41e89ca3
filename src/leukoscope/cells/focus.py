"""How much fine detail a field's leukocyte crops hold: the focus check of a cell-level call.

A blur takes a cell's finest detail first. What is left at the finest scale, measured against the
scale just above it, falls with the blur whatever the stain transfer does to the cell's contrast:
the transfer scales both bands alike. The ratio is read inside the cell, away from its outline, on
crops at the training fields' pixel size, so a sharper objective's finer pixels do not pass for focus
and a coarser one's upsampled pixels show as the missing detail they are.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from leukoscope.preprocess.suppressed_crop import cell_pixels

FINE_SIGMA, COARSE_SIGMA = 0.8, 2.5  # crop px: the finest band, and the one above it
INSIDE_MARGIN = 3 / 64  # of the crop's side, kept clear of the outline, where the cell meets the constant fill
MIN_INSIDE = 50 / 64**2  # of the crop's pixels: a smaller interior says nothing about focus


def crop_detail(crop: np.ndarray, fill: int) -> float | None:
    """The fine detail of one suppressed crop (RGB uint8, the fill outside the cell): the spread of
    lightness finer than FINE_SIGMA over the spread between FINE_SIGMA and COARSE_SIGMA, inside the
    cell. None when the cell's interior is too small to say."""
    inside = cell_pixels(crop, fill).astype(np.uint8)
    kernel = 2 * max(1, round(INSIDE_MARGIN * crop.shape[1])) + 1
    inside = cv2.erode(inside, np.ones((kernel, kernel), np.uint8)).astype(bool)
    if inside.sum() < MIN_INSIDE * crop.shape[0] * crop.shape[1]:
        return None
    lightness = cv2.cvtColor(crop, cv2.COLOR_RGB2LAB)[..., 0].astype(np.float32)
    fine = cv2.GaussianBlur(lightness, (0, 0), FINE_SIGMA)
    coarse = cv2.GaussianBlur(lightness, (0, 0), COARSE_SIGMA)
    above = float((fine - coarse)[inside].std())
    return float((lightness - fine)[inside].std()) / above if above > 0 else None


def field_detail(crops: Sequence[np.ndarray], fill: int) -> float | None:
    """A field's fine detail: the median of its cells' (None when no cell can say)."""
    details = [d for c in crops if (d := crop_detail(c, fill)) is not None]
    return float(np.median(details)) if details else None
