"""The red-cell ruler: red cells are about 7.5 µm across on every smear, so their diameter in pixels
is the field's scale.

Red cells absorb green light: they are the darker, unstained discs on the pale plasma. A field's
red-cell mask is its green channel below Otsu's threshold, leukocytes and their surroundings left
out (as the detector finds them: an absolute stain threshold takes a warm stain's red cells for
nuclei), and so are regions a leukocyte's margin cuts; central pallor is filled. Colour is not
used: the red cells of the development data are grey-blue, not pink. The ruler is the median
diameter of the isolated round discs (most red cells overlap, and a pair would read large); with
too few of them, of the distance transform's peaks; and None when the field shows no measurable
red cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from leukoscope.cells.detect import field_scale, leukocyte_pixels
from leukoscope.data.images import read_rgb

RED_CELL_UM = 7.5
# the median red-cell diameter this ruler measures on the development fields (224 px; 2824 of 2856 measured):
# what the pixel scale of a bundle trained on them refers to, when the bundle does not record its own. The
# sessions differ: per class 10.8 (Benign), 16.2 (Early), 16.7 (Pre) and 13.9 px (Pro)
DEVELOPMENT_RED_CELL_PX = 15.0
MIN_IMAGES = 3  # images with a measured ruler needed for a pixel scale
# a pixel scale this close to a field of view's is that field of view: the model learnt across the development
# sessions, whose red cells measure 0.72-1.11 x their pooled median (per class), so a set within that spread is
# cut as training cut it. (Re-cutting the same cells through a resampling at pixel scale 1.01 changed 29 % of one
# model's subtype calls, though none of its benign/malignant calls: the extra interpolation alone.)
SCALE_TOLERANCE = 1.45
MIN_DISCS = 3  # isolated round discs needed for the median
MIN_ROUNDNESS = 0.8  # 4 pi area / perimeter^2 of an isolated disc
LEUKOCYTE_SPAN = (0.8, 4.0)  # a leukocyte is 1-3 red cells across: a ruler that disagrees measured something else


@dataclass(frozen=True)
class Ruler:
    red_cell_px: float  # median red-cell diameter in this image's pixels
    discs: int  # how many discs it was measured on
    method: str  # "isolated discs" or "distance peaks"

    @property
    def um_per_px(self) -> float:
        return RED_CELL_UM / self.red_cell_px


def red_cell_mask(rgb: np.ndarray, leukocytes: np.ndarray | None = None) -> np.ndarray:
    """Pixels of red cells: darker in green than the plasma (Otsu over the pixels away from the
    leukocytes). `leukocytes` is the detector's mask (detected when None)."""
    if leukocytes is None:
        leukocytes = leukocyte_pixels(rgb)
    scale = field_scale(rgb.shape)
    k = max(3, int(round(9 * scale)) | 1)
    stained = cv2.dilate(leukocytes.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))).astype(bool)
    green = cv2.GaussianBlur(rgb[..., 1], (0, 0), 1.0)
    if (~stained).sum() < 100:
        return np.zeros(green.shape, bool)
    # Otsu on the unstained pixels only: with large leukocytes in view it would split them from the rest
    threshold, _ = cv2.threshold(green[~stained].reshape(-1, 1), 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    dark = ((green < threshold) & ~stained).astype(np.uint8)
    n, labels = cv2.connectedComponents(dark, connectivity=8)
    # a red cell that a leukocyte's margin cuts is a fragment: it would read small
    touching = cv2.dilate(stained.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    keep = np.arange(n) > 0  # label 0 is the background
    keep[np.unique(labels[touching & (dark > 0)])] = False
    dark = keep[labels].astype(np.uint8)
    outlines, _ = cv2.findContours(dark, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    filled = np.zeros_like(dark)
    cv2.drawContours(filled, outlines, -1, 1, thickness=-1)  # central pallor is still the cell
    return filled.astype(bool)


def measure_red_cells(rgb: np.ndarray, leukocytes: np.ndarray | None = None) -> Ruler | None:
    """The field's red-cell diameter in pixels, or None when no red cell can be measured."""
    mask = red_cell_mask(rgb, leukocytes).astype(np.uint8)
    h, w = mask.shape
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    min_area = max(12.0, 1e-4 * h * w)
    diameters = []
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        if area < min_area or x == 0 or y == 0 or x + bw >= w or y + bh >= h:
            continue  # specks, and discs the frame cuts
        outline, _ = cv2.findContours((labels[y : y + bh, x : x + bw] == i).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        perimeter = cv2.arcLength(max(outline, key=cv2.contourArea), True)
        if perimeter > 0 and 4 * np.pi * area / perimeter**2 >= MIN_ROUNDNESS:
            diameters.append(2 * np.sqrt(area / np.pi))
    if len(diameters) >= MIN_DISCS:
        return Ruler(float(np.median(diameters)), len(diameters), "isolated discs")
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    peaks = (dist == cv2.dilate(dist, np.ones((5, 5), np.uint8))) & (dist > 2)
    if peaks.sum() < MIN_DISCS:
        return None
    values = dist[peaks]
    values = values[values >= 0.5 * values.max()]  # a cell's centre, not the saddles of overlaps
    return Ruler(float(2 * np.median(values)), int(len(values)), "distance peaks")


def plausible(ruler: Ruler | None, leukocyte_diameters: list[float]) -> bool:
    """Whether the field's leukocytes measure 0.8-4 red cells across on this ruler (their median)."""
    if ruler is None or not leukocyte_diameters:
        return False
    span = float(np.median(leukocyte_diameters)) / ruler.red_cell_px
    return LEUKOCYTE_SPAN[0] <= span <= LEUKOCYTE_SPAN[1]


@dataclass(frozen=True)
class TrainingScale:
    """What pixel scales refer to: the training fields' red cells, and the scale their cells were found at."""

    red_cell_px: float  # median red-cell diameter, in pixels of a 224 px field
    field_scale: float  # median `field_scale` of the training fields (1 for 224 px fields)
    measured: int  # fields whose red cells could be measured
    fields: int  # fields looked at


def training_scale(paths: list[str], most: int = 200, max_pixels: int | None = None) -> TrainingScale | None:
    """The training fields' scale from up to `most` of them (evenly spaced); None when fewer than MIN_IMAGES are measured."""
    chosen = sorted(set(paths))
    chosen = chosen[:: max(1, len(chosen) // most)][:most]
    diameters, scales = [], []
    for path in chosen:
        rgb = read_rgb(path, max_pixels=max_pixels)
        scales.append(field_scale(rgb.shape))
        ruler = measure_red_cells(rgb)
        if ruler is not None:
            diameters.append(ruler.red_cell_px / scales[-1])
    if len(diameters) < MIN_IMAGES:
        return None
    return TrainingScale(float(np.median(diameters)), float(np.median(scales)), len(diameters), len(chosen))


@dataclass(frozen=True)
class ScaleEstimate:
    """One microscope's pixel scale, measured on a set of its images."""

    pixel_scale: float  # the images' pixels per pixel of the training fields (at 224 px)
    red_cell_px: float  # the median red-cell diameter over the images, in their pixels
    measured: int  # images whose red cells could be measured
    images: int

    def describe(self) -> str:
        return (f"pixel scale {self.pixel_scale:.2f} x the training fields' (red cells {self.red_cell_px:.1f} px across, "
                f"the median over {self.measured} of {self.images} images)")  # fmt: skip


def estimate_pixel_scale(rulers: list[Ruler | None], reference_px: float = DEVELOPMENT_RED_CELL_PX) -> ScaleEstimate | None:
    """The pixel scale shared by images from one microscope and camera (one ruler per image, None where
    unmeasured): the median red-cell diameter against the training fields' `reference_px`. One field's
    ruler is too noisy to rescale it by (measured/true 0.73-1.65, 10th-90th percentile, at magnification
    x0.5); the median over many is not. None when fewer than MIN_IMAGES are measured."""
    diameters = [r.red_cell_px for r in rulers if r is not None]
    if len(diameters) < MIN_IMAGES:
        return None
    median = float(np.median(diameters))
    return ScaleEstimate(median / reference_px, median, len(diameters), len(rulers))


def pixel_scale_from_size(um_per_px: float, reference_px: float = DEVELOPMENT_RED_CELL_PX) -> float:
    """The pixel scale of images of a known pixel size (µm per pixel), red cells being RED_CELL_UM across."""
    return RED_CELL_UM / reference_px / um_per_px
