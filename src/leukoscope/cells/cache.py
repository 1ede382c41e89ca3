"""Cached leukocyte crops per field, keyed by (image hash, detection + crop + preprocessing settings)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from leukoscope.cells.crops import CROP_FORMAT, CropConfig, FieldCrops, field_crops
from leukoscope.cells.detect import DetectionConfig
from leukoscope.cells.outline import CELL_JITTER_PX, as_detected, jitter_outlines
from leukoscope.config import STAIN_TARGETS, CellsConfig, stable_hash
from leukoscope.data.images import read_rgb
from leukoscope.data.shifts import AcquisitionRanges, random_acquisition
from leukoscope.io_utils import save_npy_atomic
from leukoscope.preprocess.cache import default_cache_dir, load_many
from leukoscope.preprocess.pipeline import Pipeline

OUTLINE_STREAM = 2  # sets the outline copies' random draws apart from the acquisition copies'


def detection_config(cells: CellsConfig) -> DetectionConfig:
    return DetectionConfig(outline=cells.outline, relative=cells.min_relative_stain)


def settings_key(settings: CropConfig | DetectionConfig, added_later: tuple[str, ...]) -> dict:
    """Crop or detection settings as a cache key, each field of `added_later` left out while at its default: crops
    cached before that field could be set were cut at its default, and stay valid."""
    key = asdict(settings)
    for name in added_later:
        if getattr(settings, name) == getattr(type(settings), name):
            del key[name]
    return key


CROP_ADDED_LATER = ("colour_range",)
DETECTION_ADDED_LATER = ("outline",)


def crop_config(cells: CellsConfig) -> CropConfig:
    stain = tuple(cells.stain_target or STAIN_TARGETS[cells.stain_fit]) if cells.stain == "reinhard" else None
    return CropConfig(
        size=cells.crop_size, context=cells.context, suppress=cells.suppress, scale=cells.scale, red_cell_span=cells.red_cell_span, stain_target=stain,
        source_px=cells.source_px, stain_fit=cells.stain_fit, colour_range=cells.crop_in_colour_range,
    )


def training_field_crops(
    path: str | Path, cells: CellsConfig, max_pixels: int, pixel_scale: float | None = None, training_scale: float = 1.0
) -> FieldCrops:
    """A field's cells and crops as training finds and cuts them (the recipe's crop and detection settings, the
    pipeline's pixel cap, the run's pixel scale: `field_crops`'): the cells a review's boxes are matched to."""
    return field_crops(read_rgb(path, max_pixels=max_pixels), crop_config(cells), detection_config(cells), pixel_scale=pixel_scale, training_scale=training_scale)


def preprocessed_stack(pipeline: Pipeline, crops: list[np.ndarray]) -> np.ndarray:
    """A field's crops through the preprocessing chain, as one (n, S, S, 3) uint8 array (n may be 0)."""
    size = pipeline.config.size
    return np.stack([pipeline(c) for c in crops]) if crops else np.zeros((0, size, size, 3), np.uint8)


class CellCropCache:
    """`acquisition` k >= 1 cuts each field from its k-th random other acquisition; `outline` k >= 1 cuts the
    same cells along their k-th random moved outlines (`cells.outline_jitter`). Both are seeded by the field's
    hash, k and `seed`, so a field's copies are the same in every run. An outline copy holds the crops of the
    field as imaged, cell for cell. `pixel_scale` and `training_scale` are `field_crops`': the fields' pixels per
    pixel of the training fields, and the scale those were cut at (None: each field a training field's view)."""

    def __init__(
        self,
        root: str | Path | None,
        pipeline: Pipeline,
        cells: CellsConfig,
        acquisition: int = 0,
        seed: int = 0,
        outline: int = 0,
        pixel_scale: float | None = None,
        training_scale: float = 1.0,
    ) -> None:
        if acquisition and outline:
            raise ValueError("a crop copy is either another acquisition or other outlines, not both")
        self.pipeline = pipeline
        self.crop = crop_config(cells)
        self.detection = detection_config(cells)
        self.acquisition, self.outline, self.seed = acquisition, outline, seed
        self.outline_jitter = cells.outline_jitter
        self.outline_jitter_moves = cells.outline_jitter_moves
        self.pixel_scale, self.training_scale = pixel_scale, training_scale
        scaled = {} if pixel_scale is None else {"pixel_scale": pixel_scale, "training_scale": training_scale}  # the key of crops cut before a run could set it
        key = stable_hash({"format": CROP_FORMAT, "pipeline": pipeline.cache_key, "crop": settings_key(self.crop, CROP_ADDED_LATER), "detect": settings_key(self.detection, DETECTION_ADDED_LATER), **scaled})
        self.folder = Path(root or default_cache_dir()) / "cells" / key
        self.suffix = ""
        if acquisition:
            self.suffix = f"-acquisition{acquisition}-{stable_hash({'ranges': asdict(AcquisitionRanges()), 'seed': seed})}"
        elif outline:
            both = cells.outline_jitter_moves == "cut and stain fit"
            moves = {} if both else {"moves": cells.outline_jitter_moves}  # the key of the copies cached before it could be set
            self.suffix = f"-outline{outline}-{stable_hash({'jitter': self.outline_jitter, 'cell_jitter': CELL_JITTER_PX, 'seed': seed, **moves})}"

    def load(self, path: str, sha256: str) -> np.ndarray:
        f = self.folder / sha256[:2] / f"{sha256}{self.suffix}.npy"
        try:
            return np.load(f, allow_pickle=False)
        except (OSError, ValueError):
            pass
        rgb = read_rgb(path, max_pixels=self.pipeline.config.max_pixels)
        if self.acquisition:
            rgb = random_acquisition(rgb, np.random.default_rng([self.seed, self.acquisition, int(sha256[:12], 16)]))
        rng = np.random.default_rng([self.seed, self.outline, int(sha256[:12], 16), OUTLINE_STREAM])

        def moved(labels: np.ndarray, scale: float) -> np.ndarray:
            return jitter_outlines(labels, rng, self.outline_jitter * scale)

        fit = {"cut and stain fit": None, "cut": as_detected, "cut and stain fit apart": moved}[self.outline_jitter_moves]
        crops = field_crops(
            rgb, self.crop, self.detection, outlines=moved if self.outline else None, fit_outlines=fit if self.outline else None,
            pixel_scale=self.pixel_scale, training_scale=self.training_scale,
        ).crops  # fmt: skip
        stack = preprocessed_stack(self.pipeline, crops)
        save_npy_atomic(f, stack)
        return stack


def crops_many(
    paths: list[str], shas: list[str], cache: CellCropCache, workers: int = 1, desc: str = "cell crops"
) -> tuple[dict[str, np.ndarray], list[dict[str, str]]]:
    """Crops of every readable field, by path, and the failures with reasons."""
    results, failures = load_many(cache, paths, shas, workers, desc)
    return {p: r for p, r in zip(paths, results) if r is not None}, failures
