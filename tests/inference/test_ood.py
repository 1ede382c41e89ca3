"""The out-of-distribution statistics equal their textbook definitions (they are computed the fast way)."""

import cv2
import numpy as np

from leukoscope.inference.ood import MahalanobisOOD, image_stats


def test_image_stats_equal_their_definitions():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 40, 56, 3), dtype=np.uint8)
    images[1] = 200  # a flat field: zero spread, zero Laplacian
    stats = image_stats(images)
    for img, row in zip(images, stats):
        lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float64)
        grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float64)
        padded = np.pad(grey, 1, mode="reflect")  # OpenCV's default border, reflect-101
        laplacian = padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:] - 4 * grey
        expected = [*lab.mean(0), lab[:, 0].std(), np.log1p(laplacian.var())]
        np.testing.assert_allclose(row, expected, rtol=1e-9, atol=1e-9)
    assert stats[1, 3] == 0 and stats[1, 4] == 0


def test_mahalanobis_score_is_the_smallest_class_distance():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(60, 5))
    labels = np.repeat([0, 1, 2], 20)
    features[labels == 1] += 3.0
    ood = MahalanobisOOD.fit(features, labels)
    queries = rng.normal(size=(7, 5)) * 4
    expected = [min(float((q - mu) @ ood.precision @ (q - mu)) for mu in ood.means) for q in queries]
    np.testing.assert_allclose(ood.score(queries), expected, rtol=1e-5)
