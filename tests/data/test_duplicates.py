import cv2
import numpy as np

from leukoscope.data.duplicates import aligned_correlation, connected_groups, near_duplicate_pairs
from leukoscope.data.fingerprint import phash, thumbnail
from leukoscope.data.synth import synth_field


def _facts(rgb):
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return phash(grey), thumbnail(grey)


def _reencode(rgb, quality):
    ok, buf = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)


def test_planted_near_duplicates_found_and_distinct_images_not():
    fields = [synth_field("Pre", np.random.default_rng([5, i]), size=224)[0] for i in range(12)]
    base = fields[0]
    shifted = np.roll(base, (6, -5), axis=(0, 1))
    variants = [_reencode(base, 60), shifted, cv2.resize(cv2.resize(base, (180, 180)), (224, 224))]
    images = fields + variants
    facts = [_facts(im) for im in images]
    pairs = near_duplicate_pairs([f[0] for f in facts], [f[1] for f in facts])
    groups = connected_groups(len(images), pairs)
    assert sorted(map(sorted, groups)) == [[0, 12, 13, 14]]


def test_aligned_correlation_undoes_a_shift():
    img = synth_field("Pro", np.random.default_rng(2), size=128)[0]
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    moved = np.roll(grey, 7, axis=1)
    assert aligned_correlation(thumbnail(grey), thumbnail(moved)) > 0.9
    other = cv2.cvtColor(synth_field("Pro", np.random.default_rng(3), size=128)[0], cv2.COLOR_RGB2GRAY)
    assert aligned_correlation(thumbnail(grey), thumbnail(other)) < 0.5


def test_connected_groups():
    assert sorted(map(sorted, connected_groups(6, [(0, 1), (1, 2), (4, 5)]))) == [[0, 1, 2], [4, 5]]
