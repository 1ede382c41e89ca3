"""Abstention on the class, or on benign vs malignant: what the threshold vouches for."""

import dataclasses

import numpy as np
import pytest

from leukoscope.evaluation.evaluate import accepted_error
from leukoscope.inference.predictor import Predictor
from leukoscope.scoring.intervals import wilson
from leukoscope.scoring.ood import abstain_confidence, abstain_threshold, too_few_to_vouch


def test_on_malignancy_the_confidence_is_that_of_the_plain_calls_side():
    probs = np.array([[0.40, 0.30, 0.20, 0.10], [0.10, 0.30, 0.30, 0.30], [0.05, 0.90, 0.03, 0.02]])
    called = probs.argmax(1)
    assert np.allclose(abstain_confidence(probs, called), [0.40, 0.30, 0.90])
    # a Benign call is as sure as p(Benign); a malignant one, whatever its subtype, as sure as 1 - p(Benign)
    assert np.allclose(abstain_confidence(probs, called, benign_index=0), [0.40, 0.90, 0.95])


def test_a_bundle_abstaining_on_malignancy_lets_an_unsure_subtype_through(tiny_bundle, synth_dir):
    images = [str(p) for p in sorted(synth_dir.glob("*/*.jpg"))[:24]]
    by_class = dataclasses.replace(tiny_bundle, abstain_threshold=0.9)
    by_side = dataclasses.replace(by_class, abstain_on="malignancy")
    a, b = Predictor(by_class).predict_paths(images)[0], Predictor(by_side).predict_paths(images)[0]
    probs = np.array([[r[f"p_{c}"] for c in tiny_bundle.classes] for r in a])
    ood = np.array([r["ood"] for r in a])
    assert [r["abstain"] for r in a] == list((probs.max(1) < 0.9) | ood)
    side = np.where(probs.argmax(1) == 0, probs[:, 0], 1 - probs[:, 0])
    assert tiny_bundle.classes[0] == "Benign"
    assert [r["abstain"] for r in b] == list((side < 0.9) | ood)
    assert sum(r["abstain"] for r in b) <= sum(r["abstain"] for r in a)  # the side is never less sure than the class


def test_accepted_error_counts_what_the_threshold_vouches_for(tiny_bundle):
    y = np.array([1, 2, 0, 0])
    probs = np.array([[0.1, 0.2, 0.7, 0.0], [0.1, 0.2, 0.7, 0.0], [0.8, 0.1, 0.1, 0.0], [0.2, 0.7, 0.1, 0.0]])
    kept = np.array([False, False, False, False])
    by_class = accepted_error(tiny_bundle, y, probs, kept)
    assert by_class["accepted"] == 4 and by_class["accepted_error"] == 0.5  # the subtype slip and the missed Benign
    by_side = accepted_error(dataclasses.replace(tiny_bundle, abstain_on="malignancy"), y, probs, kept)
    assert by_side["abstain_on"] == "malignancy" and by_side["accepted_error"] == 0.25  # only the missed Benign
    assert accepted_error(tiny_bundle, y, probs, np.ones(4, bool))["accepted_error"] is None


def _validation(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Confidences and correctness of a model whose call of confidence c is wrong with probability (1 - c)^2."""
    rng = np.random.default_rng(seed)
    confidence = rng.uniform(0.5, 1.0, n)
    return confidence, rng.uniform(size=n) < 1 - (1 - confidence) ** 2


def test_the_estimate_meets_the_target_on_the_fields_it_was_chosen_on_and_accepts_the_most():
    confidence, correct = _validation(1000)
    cut = abstain_threshold(confidence, correct, 0.02)
    kept = confidence >= cut
    assert 1 - correct[kept].mean() <= 0.02
    lower = confidence[confidence < cut].max()
    assert 1 - correct[confidence >= lower].mean() > 0.02  # the next field down would break the target


def test_the_upper_bound_keeps_fewer_calls_and_promises_only_what_the_fields_show():
    confidence, correct = _validation(1000)
    estimate = abstain_threshold(confidence, correct, 0.05)
    upper = abstain_threshold(confidence, correct, 0.05, bound="upper")
    assert upper > estimate
    kept = confidence >= upper
    assert wilson(int((~correct[kept]).sum()), int(kept.sum()))[1] <= 0.05
    # 100 right calls cannot vouch for a 2 % error (0 of 100 has an upper bound of 3.7 %); 300 can (1.3 %)
    assert abstain_threshold(np.linspace(0.9, 1.0, 100), np.ones(100, bool), 0.02, bound="upper") == 1.0
    assert abstain_threshold(np.linspace(0.9, 1.0, 300), np.ones(300, bool), 0.02, bound="upper") == 0.5
    with pytest.raises(ValueError, match="unknown abstain bound"):
        abstain_threshold(confidence, correct, 0.05, bound="lower")


def test_a_threshold_that_too_few_validation_fields_chose_is_said_to_be_so():
    # a lab with 24 labelled validation fields: a 2 % target is half a wrong call among them, and cannot be told from none
    confidence, correct = _validation(24)
    accepted = int((confidence >= abstain_threshold(confidence, correct, 0.02)).sum())
    warning = too_few_to_vouch(accepted, 0.02)
    assert f"rests on {accepted} validation field(s) it accepts" in warning and "(it needs 50)" in warning
    assert too_few_to_vouch(50, 0.02) == "" and too_few_to_vouch(10, 0.1) == "" and too_few_to_vouch(3, 0.0) == ""
