"""The preprocessing chain built from the config: one implementation for training, evaluation and inference."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from leukoscope.config import PreprocessConfig, stable_hash
from leukoscope.data.images import read_rgb
from leukoscope.data.shifts import grey
from leukoscope.preprocess import steps

# fields that change the cached uint8 image; mean/std/normalize are applied later, on tensors
_NORMALIZATION_FIELDS = {"normalize", "mean", "std"}


class Pipeline:
    """mask_annotation? -> resize -> stain_normalize? -> grey? -> LAB/CLAHE(L) -> denoise, on RGB uint8."""

    def __init__(self, config: PreprocessConfig | None = None) -> None:
        self.config = config or PreprocessConfig()

    @property
    def cache_key(self) -> str:
        """Hash of every parameter that changes the preprocessed pixels."""
        return stable_hash({k: v for k, v in asdict(self.config).items() if k not in _NORMALIZATION_FIELDS | {"max_pixels"}})

    def named_steps(self) -> list[tuple[str, Callable[[np.ndarray], np.ndarray]]]:
        c = self.config
        chain: list[tuple[str, Callable[[np.ndarray], np.ndarray]]] = []
        if c.mask_annotation:
            chain.append(("mask annotation", lambda x: steps.mask_annotation(x, tuple(c.annotation_box))))
        chain.append((f"resize {c.size} ({c.resize})", lambda x: steps.resize(x, c.size, c.resize, c.pad_mode, tuple(c.pad_value))))
        if c.stain_normalize:
            chain.append(("stain (Reinhard)", lambda x: steps.stain_normalize(x, tuple(c.stain_reference))))
        if c.grey:
            chain.append(("grey", grey))
        if c.clahe:
            chain.append((f"LAB CLAHE {c.clahe_clip:g}/{c.clahe_tiles}", lambda x: steps.lab_clahe(x, c.clahe_clip, c.clahe_tiles)))
        if c.denoise != "none":
            chain.append((f"denoise {c.denoise} {c.denoise_size}", lambda x: steps.denoise(x, c.denoise, c.denoise_size)))
        return chain

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        for _, step in self.named_steps():
            rgb = step(rgb)
        return rgb

    def trace(self, rgb: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """The image after every step, for the preview grid."""
        out = [("input", rgb)]
        for name, step in self.named_steps():
            rgb = step(rgb)
            out.append((name, rgb))
        return out

    def load(self, path: str | Path) -> np.ndarray:
        """Read a file and run the chain; errors name the file."""
        return self(read_rgb(path, max_pixels=self.config.max_pixels))

    def mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        c = self.config
        if c.normalize == "none":
            return (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        if c.normalize == "dataset":
            if c.mean is None or c.std is None:
                raise ValueError("normalize=dataset needs mean and std computed from the training split")
            return tuple(c.mean), tuple(c.std)
        return steps.IMAGENET_MEAN, steps.IMAGENET_STD


def channel_stats(images: np.ndarray | list[np.ndarray]) -> tuple[list[float], list[float]]:
    """Per-channel mean and std in [0, 1] units over preprocessed uint8 images (training split only)."""
    total = np.zeros(3)
    total_sq = np.zeros(3)
    n = 0
    for img in images:
        x = img.reshape(-1, 3).astype(np.float64) / 255.0
        total += x.sum(0)
        total_sq += (x * x).sum(0)
        n += len(x)
    mean = total / n
    std = np.sqrt(np.maximum(total_sq / n - mean**2, 1e-12))
    return [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std]
