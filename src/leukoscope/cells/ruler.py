"""The red-cell ruler: red cells are about 7.5 µm across on every smear, so their diameter in pixels
is the field's scale.

Red cells absorb green light: they are the darker, unstained discs on the pale plasma. A field's
red-cell mask is its green channel below Otsu's threshold, leukocytes and their surroundings left
out (as the detector finds them: an absolute stain threshold takes a warm stain's red cells for
nuclei), and so are regions a leukocyte's margin cuts; central pallor is filled. Colour is not
used: the red cells of the development data are grey-blue, not pink. The ruler is the median local
thickness of that mask: most red cells overlap, many are cut by the frame or by a leukocyte, and the
largest disc that fits a pixel's cell measures each alike (a cell the frame cuts, while its centre is in
view: OpenCV's distance transform does not take the frame for background; a sliver measures about twice
its visible height, which is why single-cell windows measure 7 % short). An earlier ruler (the median isolated
round disc, else the distance transform's peaks) measured a set of development fields magnified
0.5-4x 8-19 % short, as specks passed for discs and cut cells were left out; this one, 0-3 % short
(one field: 2-9 %; BENCHMARKS.md). None when the mask holds fewer than MIN_RED_CELLS red cells. The black
corners beyond a field stop are left out, and a lamp's uneven light is evened out first: both passed for red
cells, and cut a set's cells at 3x and 1.88x their scale (BENCHMARKS.md, "Black corners and vignetting").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import cv2
import numpy as np

from leukoscope.cells.detect import field_scale, leukocyte_pixels
from leukoscope.data.images import DEFAULT_MAX_PIXELS, read_rgb
from leukoscope.errors import DataError
from leukoscope.workers import parallel_map

RED_CELL_UM = 7.5
# the median red-cell diameter this ruler measures on the development fields (224 px; 2855 of 2856 measured):
# what the pixel scale of a bundle trained on them refers to, when the bundle does not record its own. The
# sessions differ: per class 13.9 (Benign), 15.7 (Early), 16.6 (Pre) and 13.1 px (Pro)
DEVELOPMENT_RED_CELL_PX = 15.1
MIN_IMAGES = 3  # images with a measured ruler needed for a pixel scale
SET_SAMPLE = 50  # images of a set measured, evenly spaced, where its pixel scale is checked rather than asked for
# a pixel scale this close to a field of view's is that field of view: the model learnt across the development
# sessions, whose red cells measure 0.87-1.10 x their pooled median (per class; 0.72-1.11 by the earlier ruler),
# and a set's scale is measured to within 3 % (x0.5-4 of the development fields), so a set this near is cut as
# training cut it. (Re-cutting the same cells through a resampling at pixel scale 1.01 changed 29 % of one model's
# subtype calls, though none of its benign/malignant calls: the extra interpolation alone.)
SCALE_TOLERANCE = 1.45
RULER = "local thickness"  # recorded with a bundle's training scale: a scale measured by another ruler is not comparable
MIN_RED_CELLS = 0.25  # a quarter of a red cell's area is needed for a ruler: an oil objective's view may show no more than part of one
THICKNESS_STEP = 1.02  # ratio between successive disc diameters: the ruler's resolution
WIDEST_REGION = 3  # x MAX_RADIUS_PX: the widest radius measured; no red cell comes near it
MAX_RADIUS_PX = 24  # larger red cells are measured on a shrunk mask (their radius, 90th percentile of the ridge)
LIGHT_SPAN = 3  # red cells across the disc that reads the lamp's light past them
EVEN_LIGHT = 0.9  # a field whose plasma's light varies less than this (min / max) is taken as evenly lit
FIELD_STOP_LEVEL = 60  # no channel brighter: beyond the field stop, not smear (a red cell's green is 150-200)
LEUKOCYTE_SPAN = (0.8, 4.0)  # a leukocyte is 1-3 red cells across: a ruler that disagrees measured something else
AUTO = "auto"  # a pixel size of "auto": measured on the images' red cells
FIELD_OF_VIEW = "field"  # a pixel size of "field": each image taken to show a training field's field of view
PIXEL_UM = (0.005, 20.0)  # the pixel sizes, in µm, a microscope image can have
PIXEL_SCALE_RANGE = (0.05, 50.0)  # the pixel scales, against the training fields', that crops are cut at


@dataclass(frozen=True)
class Ruler:
    red_cell_px: float  # median red-cell diameter in this image's pixels
    red_cells: float  # the red-cell mask's area, in red cells of that diameter

    @property
    def area_px(self) -> float:
        """The red-cell mask's area in pixels."""
        return self.red_cells * np.pi / 4 * self.red_cell_px**2

    @property
    def um_per_px(self) -> float:
        return RED_CELL_UM / self.red_cell_px


def beyond_field_stop(rgb: np.ndarray) -> np.ndarray:
    """Pixels outside the microscope's field of view: the black corners of a camera that sees the round field
    stop. They are darker in green than the plasma too, and Otsu then split black from smear: one field with
    such corners measured its red cells 45.7 px across instead of 11.0, and a set of them was cut at 3x its scale
    (BENCHMARKS.md, issue 17, twenty-ninth session). A dark region is the stop's when no channel reaches
    FIELD_STOP_LEVEL over a disc of a red cell's core; the darkest nuclei and the scale bar's text are thinner."""
    dark = (rgb.max(axis=-1) < FIELD_STOP_LEVEL).astype(np.uint8)
    return cv2.morphologyEx(dark, cv2.MORPH_OPEN, _red_cell_core(rgb.shape)).astype(bool)


def _red_cell_core(shape: tuple[int, ...]) -> np.ndarray:
    """A disc about a red cell's core across (9 px of a 224-px field) at the image's field scale."""
    k = max(3, int(round(9 * field_scale(shape))) | 1)
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))


def evenly_lit(green: np.ndarray, red_cell_px: float) -> np.ndarray:
    """The green channel divided by the lamp's light across the field, where it varies by more than EVEN_LIGHT.
    A camera's vignetting darkens the plasma towards the corners, and Otsu then took the dark plasma for red
    cells: with corners at 60 % of the centre's light, a set of test fields was cut at 1.88 x its scale and 9 %
    of its malignant fields were called malignant (BENCHMARKS.md, issue 17, twenty-ninth session). The light is
    the green channel closed by a disc LIGHT_SPAN red cells of `red_cell_px` across, then smoothed."""
    k = int(np.clip(LIGHT_SPAN * red_cell_px, 3, min(green.shape))) | 1
    closed = cv2.morphologyEx(green, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    light = cv2.GaussianBlur(closed.astype(np.float32), (0, 0), k / 4)
    if light.min() >= EVEN_LIGHT * light.max() or light.max() <= 0:
        return green
    return np.clip(green * (float(np.median(light)) / np.maximum(light, 1.0)), 0, 255).astype(np.uint8)


def red_cell_mask(rgb: np.ndarray, leukocytes: np.ndarray | None = None, red_cell_px: float | None = None) -> np.ndarray:
    """Pixels of red cells: darker in green than the plasma (Otsu over the pixels away from the
    leukocytes). `leukocytes` is the detector's mask (detected when None); with `red_cell_px`, a
    measure of the red cells, the green channel is evenly lit first (`evenly_lit`)."""
    if leukocytes is None:
        leukocytes = leukocyte_pixels(rgb)
    beyond = beyond_field_stop(rgb)
    left_out = leukocytes | beyond  # no red cell to measure there, and a red cell cut by either reads small
    stained = cv2.dilate(left_out.astype(np.uint8), _red_cell_core(rgb.shape)).astype(bool)
    green = cv2.GaussianBlur(rgb[..., 1], (0, 0), 1.0)
    if red_cell_px is not None and not beyond.all():  # the stop's black is no lamp's light: lit as the plasma
        green = evenly_lit(np.where(beyond, np.percentile(green[~beyond], 95), green).astype(np.uint8), red_cell_px)
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


def local_thickness(mask: np.ndarray) -> np.ndarray:
    """Each mask pixel's local thickness (Hildebrand & Rüegsegger 1997): the diameter of the largest disc
    inside the mask that covers it; 0 outside. Every pixel of a red cell gets that cell's diameter, whether
    the cell lies alone, overlaps others or is cut by the frame, so the measure scales with magnification."""
    mask = mask.astype(np.uint8)
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    ridge = dist[(dist == cv2.dilate(dist, np.ones((3, 3), np.uint8))) & (dist > 0)]
    if ridge.size == 0:
        return np.zeros(mask.shape, np.float32)
    shrink = min(1.0, MAX_RADIUS_PX / float(np.percentile(ridge, 90)))  # large cells: measured on a smaller mask
    shrink = max(shrink, 8 / min(mask.shape))  # of at least 8 px a side (a mask one region wide left none: OpenCV failed)
    small = mask if shrink == 1.0 else (cv2.resize(mask.astype(np.float32), None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA) >= 0.5).astype(np.uint8)
    dist = dist if shrink == 1.0 else cv2.distanceTransform(small, cv2.DIST_L2, 5)
    thickness = np.zeros(small.shape, np.float32)
    radius = 1.0
    # a region wider than WIDEST_REGION x MAX_RADIUS_PX (a dark field taken whole) reads that wide: larger discs cost minutes
    while radius <= min(float(dist.max()), WIDEST_REGION * MAX_RADIUS_PX):
        side = int(2 * radius) | 1
        covered = cv2.dilate((dist >= radius).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side)))
        thickness[(covered > 0) & (small > 0)] = 2 * radius / shrink
        radius *= THICKNESS_STEP
    if shrink == 1.0:
        return thickness
    return np.where(mask > 0, cv2.resize(thickness, mask.shape[::-1], interpolation=cv2.INTER_NEAREST), 0).astype(np.float32)


def measure_red_cells(rgb: np.ndarray, leukocytes: np.ndarray | None = None) -> Ruler | None:
    """The field's red-cell diameter in pixels, or None when no red cell can be measured. The lamp's light is
    evened out twice (`evenly_lit`): past red cells a twelfth of the field across, then past those measured
    (a disc of one share of the field fitted a vignette, and ate into the red cells at 3-4x the magnification)."""
    leukocytes = leukocyte_pixels(rgb) if leukocytes is None else leukocytes
    first = _ruler(red_cell_mask(rgb, leukocytes, min(rgb.shape[:2]) / 12))
    return None if first is None else _ruler(red_cell_mask(rgb, leukocytes, first.red_cell_px))


def _ruler(mask: np.ndarray) -> Ruler | None:
    thickness = local_thickness(mask)
    values = thickness[thickness > 0]
    if values.size == 0:
        return None
    diameter = float(np.median(values))
    cells = values.size / (np.pi / 4 * diameter**2)  # the mask's area in red cells of that diameter
    return Ruler(diameter, cells) if cells >= MIN_RED_CELLS else None


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
    ruler: str = RULER  # what measured them


def training_scale(paths: list[str], most: int = 200, max_pixels: int = DEFAULT_MAX_PIXELS) -> TrainingScale | None:
    """The training fields' scale from up to `most` of them (evenly spaced); None when fewer than MIN_IMAGES are measured."""
    chosen = sorted(set(paths))
    chosen = chosen[:: max(1, len(chosen) // most)][:most]

    def measure(path: str) -> tuple[float, Ruler | None]:
        rgb = read_rgb(path, max_pixels=max_pixels)
        return field_scale(rgb.shape), measure_red_cells(rgb)

    measured = parallel_map(measure, chosen, 2, "measuring the training fields' red cells")
    scales = [scale for scale, _ in measured]
    diameters = [ruler.red_cell_px / scale for scale, ruler in measured if ruler is not None]
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
    unmeasured): the red-cell diameter over the images against the training fields' `reference_px`.
    One field's ruler is too noisy to rescale it by (measured/true 0.74-1.08, 10th-90th percentile, at
    magnification x0.5 of the development fields; 0.32-1.19 at x4, where a field shows one or two red
    cells); the median over many is not. Each image counts by its red cells' area: at a high
    magnification a field may show a speck and no whole red cell. None when fewer than MIN_IMAGES are
    measured."""
    measured = [r for r in rulers if r is not None]
    if len(measured) < MIN_IMAGES:
        return None
    diameters, weights = [r.red_cell_px for r in measured], [r.area_px for r in measured]
    median = float(np.quantile(diameters, 0.5, weights=weights, method="inverted_cdf"))
    return ScaleEstimate(median / reference_px, median, len(measured), len(rulers))


def one_scale(a: float, b: float) -> bool:
    """Whether two pixel scales are one for cutting crops: within SCALE_TOLERANCE of each other."""
    return 1 / SCALE_TOLERANCE <= a / b <= SCALE_TOLERANCE


def ruler_and_view(rgb: np.ndarray) -> tuple[Ruler | None, float]:
    """An image's red-cell ruler, and the pixel scale its size alone tells (`field_scale`): what `set_scale` compares."""
    return measure_red_cells(rgb), field_scale(rgb.shape)


def set_scale(measured: Sequence[tuple[Ruler | None, float | None]], reference_px: float) -> tuple[ScaleEstimate, float] | None:
    """A set's pixel scale from its images' `ruler_and_view` ((None, None) where one could not be read), and that scale
    over the median scale the images' sizes tell: beyond the tolerance, another magnification than their size says.
    None when too few red cells were measured."""
    estimate = estimate_pixel_scale([ruler for ruler, _ in measured], reference_px)
    if estimate is None:
        return None
    return estimate, estimate.pixel_scale / float(np.median([view for _, view in measured if view is not None]))


def pixel_scale_from_size(um_per_px: float, reference_px: float = DEVELOPMENT_RED_CELL_PX) -> float:
    """The pixel scale of images of a known pixel size (µm per pixel), red cells being RED_CELL_UM across."""
    return RED_CELL_UM / reference_px / um_per_px


def pixel_size_from_scale(pixel_scale: float, reference_px: float = DEVELOPMENT_RED_CELL_PX) -> float:
    """The pixel size (µm per pixel) that a pixel scale stands for: `pixel_scale_from_size` undone, which is the
    same map (scale x size = RED_CELL_UM / reference_px)."""
    return pixel_scale_from_size(pixel_scale, reference_px)


def check_pixel_size(um: float) -> None:
    """A DataError where `um` is no microscope image's pixel size (the caller names the option)."""
    if not PIXEL_UM[0] <= um <= PIXEL_UM[1]:
        raise DataError(f"a microscope image's pixel is {PIXEL_UM[0]:g}-{PIXEL_UM[1]:g} µm across, got {um:g}")


def parse_pixel_size(text: str) -> str | float:
    """'auto', 'field', or a pixel size in µm; a DataError saying what is accepted otherwise (the caller names the option)."""
    if text in (AUTO, FIELD_OF_VIEW):
        return text
    try:
        um = float(text)
    except ValueError:
        raise DataError(f"expected {AUTO}, {FIELD_OF_VIEW} or a number of µm, got {text!r}") from None
    check_pixel_size(um)
    return um


def check_pixel_scale(pixel_scale: float, what: str = "") -> None:
    """A DataError (naming `what`, where given) where no crop can be cut at this scale: a pixel size mistyped, or a ruler misled."""
    low, high = PIXEL_SCALE_RANGE
    if not low <= pixel_scale <= high:
        named = f"{what}: " if what else ""
        raise DataError(f"{named}pixel scale {pixel_scale:g} is outside {low:g}-{high:g} x the training fields': check the pixel size")


T = TypeVar("T")


def evenly_spaced(items: Sequence[T], most: int = SET_SAMPLE) -> list[T]:
    """Up to `most` of `items`, evenly spaced: the images a set's pixel scale is measured on."""
    return list(items)[:: max(1, len(items) // most)][:most]
