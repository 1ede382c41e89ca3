"""Scale-normalised cell crops: centred on each leukocyte and sized by its own measured diameter.

The same cell gives the same crop at any magnification: the crop side is `context` x the cell's
diameter, resampled to `size` pixels. Pixels outside the (slightly grown) cell mask are suppressed
so the background cannot carry the class.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from leukoscope.cells.detect import Cell, DetectionConfig, detect_leukocytes

SUPPRESS_MODES = ("constant", "noise", "none")


@dataclass(frozen=True)
class CropConfig:
    size: int = 64
    context: float = 1.4  # crop side / cell diameter
    suppress: str = "constant"  # what replaces pixels outside the cell mask
    fill: int = 128
    single_cell_fraction: float = 0.25  # a detected cell this large a share of the image: a single-cell image


def crop_cell(rgb: np.ndarray, labels: np.ndarray, index: int, cell: Cell, config: CropConfig, rng: np.random.Generator | None = None) -> np.ndarray:
    """One size x size RGB crop of cell `index` (1-based in `labels`)."""
    half = config.context * cell.radius
    x0, y0 = cell.x - half, cell.y - half
    scale = config.size / (2 * half)
    # affine map from the source square around the cell onto the crop (sub-pixel, border replicated)
    m = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], np.float32)
    crop = cv2.warpAffine(rgb, m, (config.size, config.size), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if config.suppress == "none":
        return crop
    mask = cv2.warpAffine((labels == index).astype(np.uint8) * 255, m, (config.size, config.size), flags=cv2.INTER_LINEAR) > 127
    if config.suppress == "constant":
        crop[~mask] = config.fill
    elif config.suppress == "noise":
        rng = rng or np.random.default_rng(0)
        crop[~mask] = rng.integers(0, 256, (int((~mask).sum()), 3), dtype=np.uint8)
    else:
        raise ValueError(f"unknown suppress mode {config.suppress!r}; choose {', '.join(SUPPRESS_MODES)}")
    return crop


@dataclass
class FieldCrops:
    """The crops of one field, the cells they were cut from and the label image of those cells."""

    crops: list[np.ndarray]
    cells: list[Cell]
    labels: np.ndarray  # int32, 0 = background, i + 1 = cells[i]
    single: bool  # handled as a single-cell image


def field_crops(
    rgb: np.ndarray, crop: CropConfig = CropConfig(), detection: DetectionConfig = DetectionConfig(), detect_on: np.ndarray | None = None
) -> FieldCrops:
    """All cell crops of a field, with their cells, and whether the image is a single-cell image.

    A single-cell image (one detected cell covering a large share of the frame, or no detection in
    a small image) is handled as one cell centred in the frame, so it never fails detection.
    `detect_on` (same size) finds the cells on another image and cuts them from `rgb`: the
    background swap uses it to judge the classifier apart from the detector.
    """
    if detect_on is not None and detect_on.shape != rgb.shape:
        raise ValueError(f"detect_on has shape {detect_on.shape}, the image {rgb.shape}")
    cells, labels = detect_leukocytes(rgb if detect_on is None else detect_on, detection)
    h, w = rgb.shape[:2]
    big = [c for c in cells if c.area >= crop.single_cell_fraction * h * w]
    if (len(cells) == 1 and big) or (not cells and max(h, w) <= 2 * crop.size):
        if not cells:
            cells = [Cell(w / 2, h / 2, min(h, w) / (2 * crop.context), (0, 0, w, h), h * w)]
            labels = np.ones((h, w), np.int32)
        return FieldCrops([crop_cell(rgb, labels, 1, cells[0], crop)], cells, labels, True)
    return FieldCrops([crop_cell(rgb, labels, i + 1, c, crop) for i, c in enumerate(cells)], cells, labels, False)
