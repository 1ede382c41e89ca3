"""A field's leukocytes re-stained: to another class's stain (the stain swap), or to one reference stain.

The stain swap is the counterpart of the background swap for the cell's own colour. Reinhard's
transfer (LAB means and standard deviations, torchstain's implementation) is fitted on the pooled
leukocyte pixels of the donor class and applied to the leukocyte pixels of the field; the rest of
the field is left as it is. A model that reads morphology keeps its prediction; one that reads the
session's stain follows the donor. The same transfer onto a fixed reference (`cells.stain=reinhard`)
takes the session's stain away before the model sees the cells.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from torchstain.numpy.normalizers.reinhard import NumpyReinhardNormalizer
from torchstain.numpy.utils.rgb2lab import rgb2lab

from leukoscope.cells.colour_range import LUMA
from leukoscope.cells.detect import leukocyte_pixels

MAX_POOLED_PIXELS = 400_000  # per class: the statistics settle long before this
MIN_LAB_SPREAD = 0.1  # pixels this uniform in an L*a*b* channel have no stain to transfer (Reinhard divides by the spread)


class StainTarget:
    """The stain statistics of one class's leukocytes, and the transfer onto another field's leukocytes."""

    def __init__(self, pixels: np.ndarray) -> None:
        if len(pixels) < 10:
            raise ValueError("too few leukocyte pixels to estimate a stain")
        self.normalizer = NumpyReinhardNormalizer()
        self.normalizer.fit(np.ascontiguousarray(pixels.reshape(-1, 1, 3)))

    @classmethod
    def from_stats(cls, values: Sequence[float]) -> StainTarget:
        """A target given as LAB means then standard deviations (torchstain's LAB, L in 0-100)."""
        if len(values) != 6 or min(values[3:]) <= 0:
            raise ValueError(f"a stain target is 3 LAB means and 3 positive standard deviations, got {list(values)}")
        target = cls.__new__(cls)
        target.normalizer = NumpyReinhardNormalizer()
        target.normalizer.target_means = np.asarray(values[:3], np.float32)
        target.normalizer.target_stds = np.asarray(values[3:], np.float32)
        return target

    @property
    def lab_means(self) -> np.ndarray:
        return np.asarray(self.normalizer.target_means)

    def restain(self, rgb: np.ndarray, mask: np.ndarray | None = None, keep_lightness: bool = False, fit_on: np.ndarray | None = None) -> np.ndarray:
        """`rgb` with its leukocyte pixels (`mask`, detected when None) moved to this stain.

        `keep_lightness` moves the colour alone: each pixel keeps its luma, the grey level a
        colour-blind model sees, so such a model sees the same cell (up to rounding and clipping).
        `fit_on` (a mask within `mask`) names the pixels whose statistics are moved to this stain's, and
        the transfer found for them then moves every pixel of `mask`.
        """
        mask = leukocyte_pixels(rgb) if mask is None else mask
        out = rgb.copy()
        fit_on = mask if fit_on is None else fit_on & mask
        if fit_on.sum() < 10:
            return out
        pixels = np.ascontiguousarray(rgb[mask].reshape(-1, 1, 3))
        fitted = np.ascontiguousarray(rgb[fit_on].reshape(-1, 1, 3))
        if rgb2lab(fitted.astype(np.float32) / 255).reshape(-1, 3).astype(np.float64).std(0).min() < MIN_LAB_SPREAD:
            return out
        moved = (self.normalizer if fit_on is mask else self._transfer_fitted_on(pixels, fitted)).normalize(pixels)
        if keep_lightness:  # an equal shift of R, G and B moves luma by itself (the weights sum to 1), not hue
            shift = (pixels.astype(np.float32) @ LUMA) - (moved.astype(np.float32) @ LUMA)
            moved = np.clip(moved.astype(np.float32) + shift[..., None], 0, 255).round().astype(np.uint8)
        out[mask] = moved.reshape(-1, 3)
        return out

    def _transfer_fitted_on(self, pixels: np.ndarray, fitted: np.ndarray) -> NumpyReinhardNormalizer:
        """A normaliser that moves `pixels` as this stain's transfer moves `fitted`. torchstain's transfer
        reads the statistics of the pixels it moves, so its target is set to where that map takes theirs."""
        every, core = StainTarget(pixels).normalizer, StainTarget(fitted).normalizer
        ratio = self.normalizer.target_stds / core.target_stds
        transfer = NumpyReinhardNormalizer()
        transfer.target_means = self.normalizer.target_means + (every.target_means - core.target_means) * ratio
        transfer.target_stds = every.target_stds * ratio
        return transfer


def class_stain_targets(
    images: Sequence[np.ndarray], labels: Sequence[str], seed: int = 0, masks: Sequence[np.ndarray] | None = None
) -> dict[str, StainTarget]:
    """Each class's stain, from the pooled leukocyte pixels of its fields (sampled to a bounded number);
    `masks` are the fields' leukocyte masks when the caller has them already."""
    pooled: dict[str, list[np.ndarray]] = defaultdict(list)
    for i, (rgb, label) in enumerate(zip(images, labels)):
        pooled[label].append(rgb[leukocyte_pixels(rgb) if masks is None else masks[i]])
    rng = np.random.default_rng(seed)
    targets = {}
    for label, parts in pooled.items():
        pixels = np.concatenate(parts) if parts else np.zeros((0, 3), np.uint8)
        if len(pixels) > MAX_POOLED_PIXELS:
            pixels = pixels[rng.choice(len(pixels), MAX_POOLED_PIXELS, replace=False)]
        if len(pixels) >= 10:
            targets[label] = StainTarget(pixels)
    return targets
