"""The out-of-distribution statistics equal their textbook definitions (they are computed the fast way)."""

import cv2
import numpy as np
import pytest

from leukoscope.scoring.ood import (
    LAB_IMAGE_STATS,
    STAIN_THRESHOLD,
    ImageStatsOOD,
    MahalanobisOOD,
    image_stats,
)


def _laplacian(grey: np.ndarray) -> np.ndarray:
    padded = np.pad(grey, 1, mode="reflect")  # OpenCV's default border, reflect-101
    return padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:] - 4 * grey


def _images() -> np.ndarray:
    images = np.random.default_rng(0).integers(0, 256, (3, 40, 56, 3), dtype=np.uint8)
    images[1] = 200  # a flat field: zero spread, zero Laplacian
    return images


def test_image_stats_equal_their_definitions():
    images = _images()
    stats = image_stats(images)
    for img, row in zip(images, stats):
        grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float64)
        rgb = img.reshape(-1, 3).astype(np.float64)
        (r, g, b), spread = rgb.mean(0), rgb.std(0)
        grid = img[::2, ::2].reshape(-1, 3).astype(np.int64)
        stained = grid[(grid[:, 0] + grid[:, 2]) // 2 - grid[:, 1] > STAIN_THRESHOLD]
        stain = stained.mean(0) if len(stained) else np.zeros(3)
        expected = [r, g, b, *spread, grey.std(), np.log1p(_laplacian(grey).var()), (r + b) / 2 - g, b - (r + g) / 2, *stain]
        np.testing.assert_allclose(row, expected, rtol=1e-9, atol=1e-9)
    assert (stats[1, 3:8] == 0).all() and (stats[1, 10:] == 0).all()  # the flat grey field: no spread, no stain
    assert (stats[[0, 2], 10:] > 0).all()  # random pixels include purple ones


def test_older_bundles_lab_statistics_still_computed_their_way():
    images = _images()
    stats = image_stats(images, LAB_IMAGE_STATS)
    for img, row in zip(images, stats):
        lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float64)
        grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float64)
        expected = [*lab.mean(0), lab[:, 0].std(), np.log1p(_laplacian(grey).var())]
        np.testing.assert_allclose(row, expected, rtol=1e-9, atol=1e-9)
    old = {"stats": list(LAB_IMAGE_STATS), "low": stats.min(0).tolist(), "high": stats.max(0).tolist(), "margin": 0.0}
    check = ImageStatsOOD.from_json(old)
    assert check.names == LAB_IMAGE_STATS and not check.outside(images).any()
    assert ImageStatsOOD.from_json(check.to_json()).names == LAB_IMAGE_STATS
    with pytest.raises(ValueError, match="unknown image statistics"):
        ImageStatsOOD.from_json({**old, "stats": ["hue mean"]})


def test_mahalanobis_score_is_the_smallest_class_distance():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(60, 5))
    labels = np.repeat([0, 1, 2], 20)
    features[labels == 1] += 3.0
    ood = MahalanobisOOD.fit(features, labels)
    queries = rng.normal(size=(7, 5)) * 4
    expected = [min(float((q - mu) @ ood.precision @ (q - mu)) for mu in ood.means) for q in queries]
    np.testing.assert_allclose(ood.score(queries), expected, rtol=1e-5)
