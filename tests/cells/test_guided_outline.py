import cv2
import numpy as np
import pytest

from leukoscope.cells.detect import DetectionConfig, detect_leukocytes
from leukoscope.cells.guided_outline import GUIDE_BLUR, GUIDE_REACH
from leukoscope.cells.outline import outline_changes
from leukoscope.data.shifts import jpeg
from leukoscope.data.synth import SYNTH_CLASSES, synth_field

GUIDED = DetectionConfig(outline="lightness guided")


def _radius_changes(images: list[np.ndarray], shifted: list[np.ndarray], config: DetectionConfig) -> np.ndarray:
    """Each cell's equivalent-radius change from `images` to `shifted`, cells matched by their centres (within 3 px)."""
    return np.concatenate([outline_changes(detect_leukocytes(a, config), detect_leukocytes(b, config), 3.0)[0] for a, b in zip(images, shifted)])


def test_the_guided_outline_keeps_the_detector_s_cells_and_moves_each_outline_within_its_reach():
    redrawn = 0
    for i in range(8):
        rgb, _ = synth_field(SYNTH_CLASSES[i % 4], np.random.default_rng([21, i]), size=224)
        plain, plain_labels = detect_leukocytes(rgb)
        guided, guided_labels = detect_leukocytes(rgb, GUIDED)
        assert len(guided) == len(plain)
        for k, (a, b) in enumerate(zip(plain, guided), 1):
            assert np.hypot(a.x - b.x, a.y - b.y) < 1.5
            # every pixel of the guided cell lies within the reach (and the rim it scales) of the stain-score cell
            side = 2 * int(GUIDE_REACH + 2) + 1
            near = cv2.dilate((plain_labels == k).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side)))
            assert not ((guided_labels == k) & ~near.astype(bool)).any()
            redrawn += (guided_labels == k).sum() != (plain_labels == k).sum()
    assert redrawn > 0, "the guided score redrew no outline at all"


def test_what_lies_beyond_the_guided_outline_s_reach_cannot_move_it():
    config = DetectionConfig(outline="lightness guided", colour_range=None)  # the colour range reads the whole field's lamp
    # the guided statistics see the nuclei grown by the reach, and the lightness blur carries in 4 sigma more
    # (OpenCV's kernel); the filter's window alone would reach GUIDE_RADIUS further
    beyond = int(np.ceil(GUIDE_REACH + 4 * GUIDE_BLUR)) + 1
    for i in range(6):
        rgb, _ = synth_field(SYNTH_CLASSES[i % 4], np.random.default_rng([22, i]), size=224)
        cells, labels = detect_leukocytes(rgb, config)
        near = cv2.dilate((labels > 0).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * beyond + 1, 2 * beyond + 1))).astype(bool)
        repainted = rgb.copy()
        repainted[~near] = (205, 190, 215)  # another plasma, and no red cell
        again, labels_again = detect_leukocytes(repainted, config)
        assert len(again) == len(cells)
        np.testing.assert_array_equal(labels_again, labels)


@pytest.mark.realdata
def test_a_recompression_leaves_the_guided_outlines_where_they_were(real_data):
    from leukoscope.data.images import read_rgb

    paths = sorted((real_data / "Original").rglob("*.jpg"))[::80]
    images = [read_rgb(p) for p in paths]
    recompressed = [jpeg(x, 30) for x in images]
    plain = _radius_changes(images, recompressed, DetectionConfig())
    guided = _radius_changes(images, recompressed, GUIDED)
    # the stain score is chroma, which JPEG keeps at half resolution: its outlines shrink (-0.49 px on 74 training fields)
    assert plain.mean() < -0.25
    assert abs(guided.mean()) < abs(plain.mean()) / 3
    assert np.abs(guided).mean() < np.abs(plain).mean()
