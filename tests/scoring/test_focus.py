"""The focus floor: fitted on the training fields, it sends a field whose cells a blur has emptied to review."""

import dataclasses

import numpy as np
import pytest

from leukoscope.cells.crops import CropConfig, field_crops
from leukoscope.cells.focus import field_detail
from leukoscope.data.shifts import blur
from leukoscope.data.synth import SYNTH_CLASSES, synth_field
from leukoscope.scoring.focus import FocusFloor
from leukoscope.scoring.predictions import NO_CELLS, OUT_OF_FOCUS, score_units

FILL = CropConfig().fill


@pytest.fixture(scope="module")
def sharp_and_blurred() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The crops of six synthetic fields, and of the same fields blurred by σ 2 px."""
    fields = [synth_field(SYNTH_CLASSES[i % 4], np.random.default_rng([7, i]), size=224)[0] for i in range(6)]
    crops = lambda rgb: np.stack(field_crops(rgb, CropConfig()).crops)  # noqa: E731
    return [crops(f) for f in fields], [crops(blur(f, 2.0)) for f in fields]


def test_the_floor_is_the_quantile_of_the_training_fields_detail(sharp_and_blurred):
    sharp, _ = sharp_and_blurred
    floor = FocusFloor.fit([*sharp, np.zeros((0, 64, 64, 3), np.uint8)], 0.25, FILL)
    assert floor.floor == pytest.approx(np.quantile([field_detail(c, FILL) for c in sharp], 0.25))
    assert FocusFloor.from_json(floor.to_json()) == dataclasses.replace(floor, floor=round(floor.floor, 5))
    assert FocusFloor.fit([np.full((1, 64, 64, 3), FILL, np.uint8)], 0.25, FILL) is None  # no cell could say
    for bad in (0.0, 1.0):
        with pytest.raises(ValueError, match="between 0 and 1"):
            FocusFloor.fit(sharp, bad, FILL)


def test_a_blurred_field_goes_to_review_and_says_why_and_its_sharp_twin_does_not(tiny_bundle, sharp_and_blurred):
    sharp, blurred = sharp_and_blurred
    floor = FocusFloor.fit(sharp, 0.01, FILL)
    assert max(field_detail(c, FILL) for c in blurred) < floor.floor  # the blur takes every field below all sharp ones
    bundle = dataclasses.replace(tiny_bundle, ood=None, image_ood=None, mil=None, abstain_on="class", abstain_threshold=0.5, min_leukocytes=0, focus=floor)

    def sure_benign(units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits = np.zeros((len(units), len(bundle.classes)))
        logits[:, 0] = 50.0
        return logits, np.zeros((len(units), 4))

    empty = np.zeros((0, 64, 64, 3), np.uint8)
    pred = score_units(bundle, [sharp[0], blurred[0], empty], sure_benign)
    assert list(pred.abstain) == [False, True, True]
    assert pred.abstain_reasons[1] == f"{OUT_OF_FOCUS} ({pred.detail[1]:.3g} < {floor.floor:.3g})"
    assert pred.abstain_reasons[2] == NO_CELLS and np.isnan(pred.detail[2])
    assert not pred.ood[1]  # a blurred field is not out of distribution: its cells are there, their detail is not
    unchecked = score_units(dataclasses.replace(bundle, focus=None), [sharp[0], blurred[0]], sure_benign)
    assert unchecked.detail is None and not unchecked.abstain.any()
    np.testing.assert_allclose(unchecked.probs, pred.probs[:2])  # the floor flags calls, it does not change them
