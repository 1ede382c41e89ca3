"""Cached leukocyte crops per field, keyed by (image hash, detection + crop + preprocessing settings)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from leukoscope.cells.crops import CropConfig, field_crops
from leukoscope.cells.detect import DetectionConfig
from leukoscope.config import CellsConfig, stable_hash
from leukoscope.data.images import read_rgb
from leukoscope.io_utils import save_npy_atomic
from leukoscope.preprocess.cache import default_cache_dir, load_many
from leukoscope.preprocess.pipeline import Pipeline


def crop_config(cells: CellsConfig) -> CropConfig:
    stain = tuple(cells.stain_target) if cells.stain == "reinhard" else None
    return CropConfig(size=cells.crop_size, context=cells.context, suppress=cells.suppress, scale=cells.scale, red_cell_span=cells.red_cell_span, stain_target=stain)


def preprocessed_stack(pipeline: Pipeline, crops: list[np.ndarray]) -> np.ndarray:
    """A field's crops through the preprocessing chain, as one (n, S, S, 3) uint8 array (n may be 0)."""
    size = pipeline.config.size
    return np.stack([pipeline(c) for c in crops]) if crops else np.zeros((0, size, size, 3), np.uint8)


class CellCropCache:
    def __init__(self, root: str | Path | None, pipeline: Pipeline, cells: CellsConfig) -> None:
        self.pipeline = pipeline
        self.crop = crop_config(cells)
        key = stable_hash({"pipeline": pipeline.cache_key, "crop": asdict(self.crop), "detect": asdict(DetectionConfig())})
        self.folder = Path(root or default_cache_dir()) / "cells" / key

    def load(self, path: str, sha256: str) -> np.ndarray:
        f = self.folder / sha256[:2] / f"{sha256}.npy"
        try:
            return np.load(f, allow_pickle=False)
        except (OSError, ValueError):
            pass
        crops = field_crops(read_rgb(path, max_pixels=self.pipeline.config.max_pixels), self.crop).crops
        stack = preprocessed_stack(self.pipeline, crops)
        save_npy_atomic(f, stack)
        return stack


def crops_many(
    paths: list[str], shas: list[str], cache: CellCropCache, workers: int = 1, desc: str = "cell crops"
) -> tuple[dict[str, np.ndarray], list[dict[str, str]]]:
    """Crops of every readable field, by path, and the failures with reasons."""
    results, failures = load_many(cache, paths, shas, workers, desc)
    return {p: r for p, r in zip(paths, results) if r is not None}, failures
