"""Cached leukocyte crops per field, keyed by (image hash, detection + crop + preprocessing settings)."""

from __future__ import annotations

from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from leukoscope.cells.crops import CropConfig, field_crops
from leukoscope.cells.detect import DetectionConfig
from leukoscope.config import CellsConfig, stable_hash
from leukoscope.data.images import read_rgb
from leukoscope.errors import ImageError
from leukoscope.io_utils import save_npy_atomic
from leukoscope.preprocess.cache import default_cache_dir
from leukoscope.preprocess.pipeline import Pipeline


def crop_config(cells: CellsConfig) -> CropConfig:
    return CropConfig(size=cells.crop_size, context=cells.context, suppress=cells.suppress)


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
        crops, _, _ = field_crops(read_rgb(path, max_pixels=self.pipeline.config.max_pixels), self.crop)
        size = self.pipeline.config.size
        stack = np.stack([self.pipeline(c) for c in crops]) if crops else np.zeros((0, size, size, 3), np.uint8)
        save_npy_atomic(f, stack)
        return stack


_cache: CellCropCache | None = None


def _init(cache: CellCropCache) -> None:
    global _cache
    cv2.setNumThreads(1)
    _cache = cache


def _one(item: tuple[str, str]) -> np.ndarray | str:
    assert _cache is not None
    try:
        return _cache.load(*item)
    except ImageError as exc:
        return exc.reason


def crops_many(paths: list[str], shas: list[str], cache: CellCropCache, workers: int = 1, desc: str = "cell crops") -> tuple[dict[str, np.ndarray], list[dict[str, str]]]:
    items = list(zip(paths, shas))
    if workers > 1 and len(items) >= 32:
        with get_context("fork").Pool(workers, initializer=_init, initargs=(cache,)) as pool:
            results = list(tqdm(pool.imap(_one, items, chunksize=8), total=len(items), desc=desc, unit="img", leave=False))
    else:
        _init(cache)
        results = [_one(it) for it in tqdm(items, desc=desc, unit="img", leave=False)]
    out = {p: r for (p, _), r in zip(items, results) if not isinstance(r, str)}
    failures = [{"path": p, "reason": r} for (p, _), r in zip(items, results) if isinstance(r, str)]
    return out, failures
