"""How large the input's pixels are against the training fields': `--pixel-size auto | µm per pixel`.

A cell-level model learnt its cells at one pixel size. Another objective or camera enlarges or shrinks
them, and that alone moved its calls: magnified x4 (as a 100x oil single-cell image shows a cell), the
cells of benign fields were called malignant 60.6-81.8 % of the time, against 38.2-47.1 % in their own
fields, and 37.3-43.3 % at the training pixel size (three seeds; BENCHMARKS.md, issue 17, "The
training pixel size"). With the pixel scale known, detection and cropping work at the training
fields' pixel size, and the cells keep the detail training saw.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from leukoscope.cells.ruler import (
    AUTO,
    FIELD_OF_VIEW,
    MIN_IMAGES,
    SET_SAMPLE,
    Ruler,
    ScaleEstimate,
    check_pixel_scale,
    estimate_pixel_scale,
    evenly_spaced,
    measure_red_cells,
    one_scale,
    ruler_and_view,
    set_scale,
    pixel_scale_from_size,
)
from leukoscope.data.images import DEFAULT_MAX_PIXELS, read_rgb
from leukoscope.errors import DataError, ImageError
from leukoscope.scoring.bundle import Bundle
from leukoscope.workers import parallel_map

WHOLE_FIELD = "a pixel scale applies to cell-level models only; this one sees whole fields as they are"


def refuse_whole_field(bundle: Bundle) -> None:
    """A pixel scale sizes leukocyte crops: a whole-field bundle has none to size."""
    if not bundle.cell_level:
        raise DataError(f"{bundle.path}: {WHOLE_FIELD}")


def readable_rgb(image: str | np.ndarray, max_pixels: int) -> np.ndarray | None:
    """An image as RGB: a file read, an array as it is; None for a file that cannot be read."""
    if isinstance(image, np.ndarray):
        return image
    try:
        return read_rgb(image, max_pixels=max_pixels)
    except ImageError:
        return None


def measured_scale(images: Sequence[str | np.ndarray], reference_px: float, max_pixels: int = DEFAULT_MAX_PIXELS) -> ScaleEstimate | None:
    """The pixel scale shared by these images (one microscope: files, or RGB arrays), from their red cells;
    unreadable files are skipped."""

    def ruler(image: str | np.ndarray) -> Ruler | None:
        rgb = readable_rgb(image, max_pixels)
        return None if rgb is None else measure_red_cells(rgb)

    return estimate_pixel_scale(parallel_map(ruler, list(images), 2, "measuring red cells"), reference_px)


def untold_pixel_scale(bundle: Bundle, images: Sequence[str | np.ndarray], sample: int = SET_SAMPLE) -> tuple[float | None, str]:
    """The pixel scale for images (files or RGB arrays) predicted without one, and a warning when it is not None.
    Each image is taken to show a training field's view (None) unless their red cells, measured on up to `sample`
    of them, lie beyond SCALE_TOLERANCE of the size such a view shows: another magnification, cut at the scale
    those red cells give, as `auto` would. Cut as training fields' views, half-magnification test fields scored
    19.5 % (malignant sensitivity 15.3 %), and cells in 4x single-cell images of benign fields were called
    malignant 69.2 % of the time; cut at the scale measured here, 79.0 % (96.7 %) and 33.3 %, as in their own
    fields (BENCHMARKS.md, issue 17, "Another magnification cut at its red cells' scale"). A DataError where those red
    cells give a scale no crop is cut at (`check_pixel_scale`), as for a pixel size given."""
    if not bundle.cell_level or not images:
        return None, ""
    chosen = evenly_spaced(images, sample)

    def measure(image: str | np.ndarray) -> tuple[Ruler | None, float | None]:
        rgb = readable_rgb(image, bundle.pipeline.config.max_pixels)
        return (None, None) if rgb is None else ruler_and_view(rgb)

    found = set_scale(parallel_map(measure, chosen, 2, "checking the magnification"), bundle.training_red_cell_px)
    if found is None:
        return None, ""
    estimate, ratio = found
    if one_scale(ratio, 1.0):
        return None, ""
    check_pixel_scale(estimate.pixel_scale, "the images' red cells")
    return estimate.pixel_scale, (
        f"the images' red cells measure {estimate.red_cell_px:.1f} px across (the median over {estimate.measured} of {len(chosen)} images), "
        f"{ratio:.2f} x the size a training field of their size shows: another magnification, so their cells are cut at the pixel scale "
        f"these red cells give ({estimate.pixel_scale:.2f} x the training fields'), taking the images to share one microscope; "
        "give --pixel-size in µm to set it, or field to cut each image as a training field's view"
    )


def resolve_pixel_scale(
    pixel_size: str | float | None, bundle: Bundle, images: Sequence[str | np.ndarray], required: bool = True, option: str = "--pixel-size"
) -> tuple[float | None, str]:
    """The pixel scale to predict `images` (files or RGB arrays) with, and a line saying where it came from (None: each image taken as a
    field of view). `required=False` (a default, not the user's request) falls back to the field of view
    where the pixel scale cannot be measured, or the bundle sees whole fields. `option` is what the
    caller calls the pixel size, for its errors."""
    if pixel_size is None or pixel_size == FIELD_OF_VIEW:
        return None, ""
    if not bundle.cell_level and not required:
        return None, ""
    refuse_whole_field(bundle)
    reference = bundle.training_red_cell_px
    if pixel_size == AUTO:
        estimate = measured_scale(images, reference, bundle.pipeline.config.max_pixels)
        if estimate is None:
            why = f"red cells could be measured in fewer than {MIN_IMAGES} of the {len(images)} image(s)"
            if not required:
                return None, f"pixel scale: {why}; each image is taken to show a training field's field of view"
            raise DataError(f"{option} auto: {why}; give the pixel size in µm")
        check_pixel_scale(estimate.pixel_scale, f"{option} auto")
        return estimate.pixel_scale, estimate.describe()
    scale = pixel_scale_from_size(float(pixel_size), reference)
    check_pixel_scale(scale, f"{option} {pixel_size:g}")
    return scale, f"pixel scale {scale:.2f} x the training fields' ({pixel_size:g} µm per pixel given; the training fields' red cells are {reference:.1f} px across)"
