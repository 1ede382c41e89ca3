"""The pixel scale a cell-level run cuts its crops at (`data.pixel_size`).

A fine-tune starts from a model that learnt its cells at its training fields' pixel size. A lab's images
from another objective show those cells larger or smaller. Cut as if each image showed a training
field's view, the fine-tune would teach the model another size of the same cells, and the boxes of a
review made with `leukoscope case`, which cuts at the scale the images' red cells give, would name cells
that the fine-tune does not find. So by default a fine-tune cuts its fields where `case` and `predict`
cut the same images: at the pixel scale their red cells give against the starting bundle's training
fields, resampled only beyond the ruler's tolerance. A run takes one pixel size for all its fields: one
microscope's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from leukoscope.cells.ruler import (
    AUTO,
    DEVELOPMENT_RED_CELL_PX,
    FIELD_OF_VIEW,
    MIN_IMAGES,
    RULER,
    Ruler,
    check_pixel_scale,
    check_pixel_size,
    evenly_spaced,
    one_scale,
    pixel_scale_from_size,
    ruler_and_view,
    set_scale,
)
from leukoscope.config import Config
from leukoscope.data.images import read_rgb
from leukoscope.errors import ConfigError, DataError, ImageError
from leukoscope.workers import parallel_map

@dataclass(frozen=True)
class CropScale:
    pixel_scale: float | None  # the fields' pixels per pixel of the reference's training fields; None: each a training field's view
    training_scale: float  # the pixel scale the reference's training fields were cut at (1 for 224 px development fields)
    reference: dict[str, Any] | None  # what pixel scales refer to, as bundle.json records it; None: this run's own training fields
    note: str  # where the scale came from

    def record(self) -> dict[str, Any] | None:
        """bundle.json's `pixel_scale` for a run cut against a reference (None: measure the run's own training fields)."""
        if self.reference is None:
            return None
        cut_at = None if self.pixel_scale is None else round(self.pixel_scale, 4)
        return {**self.reference, "cut_at": cut_at, "how": self.note}


def development_reference() -> dict[str, Any]:
    """The 224 px development fields' scale: what a bundle that records none was trained at."""
    return {"red_cell_px": DEVELOPMENT_RED_CELL_PX, "field_scale": 1.0, "ruler": RULER}


def crop_scale(cfg: Config, train_paths: list[str], reviewed_scales: Sequence[float] = ()) -> CropScale:
    """The run's pixel scale from `data.pixel_size`: None (a fine-tune takes the scale its reviewed cells were found at,
    `reviewed_scales` from data.cell_labels, else measures its training fields' red cells, as `case` does; a run
    from scratch takes each field as a training field's view), "field", "auto", or µm per pixel."""
    size = cfg.data.pixel_size
    if size is not None and not cfg.cells.enabled:
        raise ConfigError(f"data.pixel_size={size}: a pixel size sizes leukocyte crops; set cells.enabled=true (configs/cells.yaml)")
    if size is None:
        size = AUTO if cfg.train.init_from else FIELD_OF_VIEW
    if size == FIELD_OF_VIEW:
        return CropScale(None, 1.0, None, "each field taken as a training field's view")
    if cfg.train.init_from:
        from leukoscope.scoring.bundle import load_bundle

        start = load_bundle(cfg.train.init_from)
        reference = {"red_cell_px": start.training_red_cell_px, "field_scale": start.training_field_scale, "ruler": RULER, "bundle": cfg.train.init_from}
        against = "the starting bundle's training fields'"
    else:
        reference, against = development_reference(), "the development fields'"
    option = f"data.pixel_size={size}"
    if cfg.data.pixel_size is None and reviewed_scales:  # the fields share the microscope whose cells were reviewed
        scale, option = float(np.median(reviewed_scales)), f"{cfg.data.cell_labels}'s pixel_scale"
        note = f"pixel scale {scale:.2f} x {against}, where the review's cells were found (the median over its {len(reviewed_scales)} rows that record one)"
        _check_one_microscope(scale, _measured(train_paths, reference["red_cell_px"], cfg.preprocess.max_pixels), cfg.data.cell_labels)
    elif isinstance(size, float):
        check_pixel_size(size)
        scale = pixel_scale_from_size(size, reference["red_cell_px"])
        note = f"pixel scale {scale:.2f} x {against} ({size:g} µm per pixel given)"
    else:
        measured = _measured(train_paths, reference["red_cell_px"], cfg.preprocess.max_pixels)
        if measured is None:
            why = f"red cells could be measured in fewer than {MIN_IMAGES} of the training fields"
            if cfg.data.pixel_size == AUTO:
                raise DataError(f"{option}: {why}; give the pixel size in µm")
            return CropScale(None, reference["field_scale"], reference, f"{why}: each field taken as a training field's view")
        scale, ratio, note = measured
        where = "cut as imaged" if one_scale(ratio, 1.0) else "resampled to their pixel size"
        note = f"pixel scale {scale:.2f} x {against}, {note}; {ratio:.2f} x a training field's view of the same size: {where}"
    check_pixel_scale(scale, option)
    return CropScale(scale, reference["field_scale"], reference, note)


def _check_one_microscope(reviewed: float, measured: tuple[float, float, str] | None, review: str) -> None:
    """A DataError where the training fields' red cells give another scale than the one the review's cells were found at:
    fields of two microscopes (a lab's reviewed fields beside the original training fields), which one scale would cut
    one of wrongly. Cut at a scale twice the model's, a lab's cells fine-tuned the model below where it started
    (BENCHMARKS.md, issue 17, "A lab at another magnification")."""
    if measured is None or one_scale(measured[0], reviewed):
        return
    raise DataError(
        f"{review}: its cells were found at pixel scale {reviewed:.2f}, but the training fields' red cells give {measured[0]:.2f} "
        "(fields of two microscopes?): a run cuts every field at one scale; fine-tune on one microscope's fields at a time, "
        "or give data.pixel_size"
    )


def _measured(paths: list[str], reference_px: float, max_pixels: int) -> tuple[float, float, str] | None:
    """The pixel scale of up to SET_SAMPLE of the fields, that over the scale their sizes tell (`set_scale`), and what was measured."""
    chosen = evenly_spaced(sorted(set(paths)))

    def measure(path: str) -> tuple[Ruler | None, float | None]:
        try:
            return ruler_and_view(read_rgb(path, max_pixels=max_pixels))
        except ImageError:  # reported with the reason where the split's crops are cut
            return None, None

    found = set_scale(parallel_map(measure, chosen, 2, "measuring the training fields' red cells"), reference_px)
    if found is None:
        return None
    estimate, ratio = found
    return estimate.pixel_scale, ratio, f"red cells {estimate.red_cell_px:.1f} px across (the median over {estimate.measured} of {len(chosen)} training fields)"
