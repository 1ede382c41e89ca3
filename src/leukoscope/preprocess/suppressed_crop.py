"""A suppressed cell crop (cells.suppress: constant): the cell's own pixels, and one grey level around them."""

from __future__ import annotations

import cv2
import numpy as np


def cell_pixels(hwc: np.ndarray, fill: int) -> np.ndarray:
    """The cell of an HWC uint8 crop: every pixel that does not hold the constant `fill` in every channel."""
    constant = (fill,) * hwc.shape[-1]
    return cv2.inRange(hwc, constant, constant) == 0
