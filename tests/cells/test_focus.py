"""Fine detail: what a blur takes from a cell's crops, whatever the stain transfer does to their contrast."""

import cv2
import numpy as np
import pytest

from leukoscope.cells.crops import CropConfig, field_crops
from leukoscope.cells.focus import crop_detail, field_detail
from leukoscope.data.shifts import blur
from leukoscope.data.synth import SYNTH_CLASSES, synth_field

FILL = CropConfig().fill


def _fields(n: int = 6) -> list[np.ndarray]:
    return [synth_field(SYNTH_CLASSES[i % 4], np.random.default_rng([5, i]), size=224)[0] for i in range(n)]


def _detail(rgb: np.ndarray) -> float:
    detail = field_detail(field_crops(rgb, CropConfig()).crops, FILL)
    assert detail is not None
    return detail


def test_a_blurred_field_holds_less_fine_detail_the_more_it_is_blurred():
    for rgb in _fields():
        sharp, soft, blurred = _detail(rgb), _detail(blur(rgb, 1.0)), _detail(blur(rgb, 2.0))
        assert sharp > soft > blurred
        assert blurred < 0.85 * sharp


def test_the_detail_does_not_follow_the_cells_contrast():
    # a paler stain, or a transfer that spreads the cell's lightness, scales both bands alike
    rng = np.random.default_rng(0)
    crop = np.full((64, 64, 3), FILL, np.uint8)
    yy, xx = np.mgrid[:64, :64]
    inside = (yy - 32) ** 2 + (xx - 32) ** 2 < 24**2
    texture = cv2.GaussianBlur(rng.normal(0, 1, (64, 64)), (0, 0), 1.0)
    texture *= 30 / texture[inside].std()
    for contrast, other in ((1.0, 0.6), (1.0, 1.5)):
        crops = []
        for c in (contrast, other):
            out = crop.copy()
            out[inside] = np.clip(110 + c * texture[inside, None] * np.array([1.0, 0.8, 0.6]), 0, 255).astype(np.uint8)
            crops.append(out)
        assert crop_detail(crops[1], FILL) == pytest.approx(crop_detail(crops[0], FILL), rel=0.1)


def test_a_crop_without_an_interior_to_read_says_nothing():
    empty = np.full((64, 64, 3), FILL, np.uint8)
    assert crop_detail(empty, FILL) is None
    speck = empty.copy()
    speck[30:36, 30:36] = (90, 40, 120)  # eroded away from its outline: no pixel left inside
    assert crop_detail(speck, FILL) is None
    assert field_detail([empty, speck], FILL) is None


def test_a_cell_of_one_flat_colour_holds_no_fine_detail():
    flat = np.full((64, 64, 3), FILL, np.uint8)
    flat[8:56, 8:56] = (90, 40, 120)
    assert crop_detail(flat, FILL) == pytest.approx(0.0, abs=0.02)
