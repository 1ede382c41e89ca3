"""Disk cache of preprocessed images keyed by (image content hash, pipeline hash), and batch precompute."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from leukoscope.errors import ImageError
from leukoscope.io_utils import save_npy_atomic
from leukoscope.preprocess.pipeline import Pipeline
from leukoscope.workers import parallel_map


def default_cache_dir() -> Path:
    return Path(os.environ.get("LEUKOSCOPE_CACHE", Path.home() / ".cache" / "leukoscope"))


class PreprocessCache:
    """`root/<pipeline hash>/<sha[:2]>/<sha>.npy`: a changed parameter is a different folder, so it misses."""

    def __init__(self, root: str | Path | None, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.folder = Path(root or default_cache_dir()) / "preprocess" / pipeline.cache_key

    def _file(self, sha256: str) -> Path:
        return self.folder / sha256[:2] / f"{sha256}.npy"

    def get(self, sha256: str) -> np.ndarray | None:
        f = self._file(sha256)
        try:
            arr = np.load(f, allow_pickle=False)
        except (OSError, ValueError):
            return None
        size = self.pipeline.config.size
        return arr if arr.shape == (size, size, 3) and arr.dtype == np.uint8 else None

    def put(self, sha256: str, image: np.ndarray) -> None:
        save_npy_atomic(self._file(sha256), image)

    def load(self, path: str | Path, sha256: str | None = None) -> np.ndarray:
        """Preprocessed image of a file, from the cache when present; computed and stored otherwise."""
        data = Path(path).read_bytes() if sha256 is None else None
        sha256 = sha256 or hashlib.sha256(data or b"").hexdigest()
        hit = self.get(sha256)
        if hit is not None:
            return hit
        from leukoscope.data.images import read_rgb

        image = self.pipeline(read_rgb(path, max_pixels=self.pipeline.config.max_pixels, data=data))
        self.put(sha256, image)
        return image


def _load_one(cache: Any, item: tuple[str, str | None]) -> np.ndarray | str:
    try:
        return cache.load(*item)
    except ImageError as exc:
        return str(exc)


def load_many(
    cache: Any, paths: list[str], shas: list[str] | None, workers: int = 1, desc: str = "preprocessing"
) -> tuple[list[np.ndarray | None], list[dict[str, str]]]:
    """`cache.load(path, sha)` for every file, in parallel with a progress bar; None where it failed.

    Shared by the image cache and the cell-crop cache; failures come back with their reasons.
    """
    items = list(zip(paths, shas or [None] * len(paths)))
    results = parallel_map(lambda item: _load_one(cache, item), items, workers if len(items) >= 32 else 1, desc)
    failures = [{"path": p, "reason": r} for (p, _), r in zip(items, results) if isinstance(r, str)]
    return [None if isinstance(r, str) else r for r in results], failures


def preprocess_many(
    paths: list[str], shas: list[str] | None, cache: PreprocessCache, workers: int = 1, desc: str = "preprocessing"
) -> tuple[np.ndarray, list[dict[str, str]]]:
    """Stack of preprocessed images (N, S, S, 3) for the readable files, and the failures with reasons."""
    results, failures = load_many(cache, paths, shas, workers, desc)
    good = [r for r in results if r is not None]
    size = cache.pipeline.config.size
    stack = np.stack(good) if good else np.zeros((0, size, size, 3), np.uint8)
    return stack, failures
