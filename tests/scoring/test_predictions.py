"""Per-field flags: a call needs enough leukocytes, and every flag says why."""

import dataclasses

import numpy as np
import pytest

from leukoscope.scoring.predictions import LOW_CONFIDENCE, NO_CELLS, TOO_FEW, abstain_reason, min_leukocytes_problem, reviewed_whatever_confidence, score_units

LEUKOCYTES = (0, 1, 2, 3, 6)  # per field


def _score(bundle, benign_logit: float):
    """Every crop scored as the same logits: Benign at `benign_logit`, the subtypes at 0."""

    def logits_and_features(units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits = np.zeros((len(units), len(bundle.classes)))
        logits[:, 0] = benign_logit
        return logits, np.zeros((len(units), 4))

    fields = [np.zeros((n, 3, 8, 8), np.float32) for n in LEUKOCYTES]
    return score_units(bundle, fields, logits_and_features)


@pytest.fixture
def bundle(tiny_bundle):
    assert tiny_bundle.classes[0] == "Benign"
    # the logits are set by hand, so no calibration: a tiny model's fitted temperature (about 20 on one CPU's kernels) made Benign at 50 unsure
    return dataclasses.replace(
        tiny_bundle, temperature=1.0, ood=None, image_ood=None, mil=None, abstain_on="class", abstain_threshold=0.6, min_leukocytes=3
    )


def test_a_field_with_too_few_leukocytes_is_flagged_and_says_why(bundle):
    sure = _score(bundle, benign_logit=50.0)
    assert sure.confidence[1:].min() > 0.99
    assert list(sure.abstain) == [True, True, True, False, False]
    assert sure.abstain_reasons == [NO_CELLS, f"{TOO_FEW} (1 < 3)", f"{TOO_FEW} (2 < 3)", "", ""]
    assert not sure.ood[1:].any()  # too few to call is not out of distribution
    without = _score(dataclasses.replace(bundle, min_leukocytes=0), benign_logit=50.0)
    assert list(without.abstain) == [True, False, False, False, False]
    np.testing.assert_allclose(without.probs, sure.probs)  # the minimum flags calls, it does not change them


def test_an_unsure_call_names_each_reason_and_an_empty_field_only_its_own(bundle):
    unsure = _score(bundle, benign_logit=0.0)
    assert unsure.abstain.all()
    assert unsure.abstain_reasons[0] == NO_CELLS  # no call, so no confidence to fall short
    assert TOO_FEW in unsure.abstain_reasons[2] and LOW_CONFIDENCE in unsure.abstain_reasons[2]
    assert unsure.abstain_reasons[4] == f"{LOW_CONFIDENCE} ({unsure.confidence[4]:.3g} < 0.6)"


def test_a_call_goes_to_review_whatever_its_confidence_for_any_reason_but_the_threshold(bundle):
    unsure, sure = _score(bundle, benign_logit=0.0), _score(bundle, benign_logit=50.0)
    assert [reviewed_whatever_confidence(why) for why in unsure.abstain_reasons] == [True, True, True, False, False]
    assert [reviewed_whatever_confidence(why) for why in sure.abstain_reasons] == [True, True, True, False, False]
    far = "image statistics outside the training range (hue); features far from the training classes (score 9 > 3)"
    assert reviewed_whatever_confidence(abstain_reason(far, 6, 3, 0.2, 0.6))
    assert reviewed_whatever_confidence(abstain_reason("", 6, 3, 0.2, 0.6, detail=0.1, min_detail=0.5))
    assert reviewed_whatever_confidence(abstain_reason("", 6, 3, 0.9, 0.6, disagreement="1 of 4 call it malignant"))
    assert not reviewed_whatever_confidence(abstain_reason("", 6, 3, 0.2, 0.6))


def test_a_minimum_is_refused_where_no_leukocyte_is_counted():
    assert min_leukocytes_problem(3, cell_level=True) is None and min_leukocytes_problem(0, cell_level=False) is None
    assert "whole-field" in min_leukocytes_problem(3, cell_level=False)
    assert "0 or more" in min_leukocytes_problem(-1, cell_level=True)


def test_how_an_ensembles_members_split_is_said_on_what_abstention_vouches_for(bundle):
    from leukoscope.scoring.predictions import member_split

    benign, pre, pro = np.eye(4)[0], np.eye(4)[2], np.eye(4)[3]
    on_malignancy = dataclasses.replace(bundle, abstain_on="malignancy")
    assert member_split(on_malignancy, np.stack([benign, pre, pro])) == "2 of 3 call it malignant"
    assert member_split(on_malignancy, np.stack([pre, pro, pro])) == ""  # all malignant: the subtype is not vouched for
    assert member_split(bundle, np.stack([pre, pro, pro])) == "Pre 1, Pro 2"
    assert member_split(bundle, np.stack([benign, benign])) == ""
