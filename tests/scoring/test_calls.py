"""The call rule: the most probable class, or the benign line first."""

import dataclasses

import numpy as np
import pytest

from leukoscope.inference.predictor import Predictor
from leukoscope.scoring.calls import call_classes
from leukoscope.scoring.metrics import classification_metrics

CLASSES = ["Benign", "Early", "Pre", "Pro"]


def test_benign_first_calls_malignant_where_malignant_is_more_probable_though_benign_is_the_top_class():
    probs = np.array([[0.40, 0.20, 0.20, 0.20], [0.55, 0.05, 0.30, 0.10], [0.10, 0.30, 0.50, 0.10], [0.30, 0.35, 0.05, 0.30]])
    assert call_classes(probs).tolist() == [0, 0, 2, 1]
    assert call_classes(probs, 0, "benign_first").tolist() == [1, 0, 2, 1]  # the tie among subtypes goes to the first
    assert call_classes(np.zeros((0, 4)), 0, "benign_first").shape == (0,)


def test_the_two_rules_agree_on_the_class_wherever_benign_is_not_the_question():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), 500)
    argmax, first = call_classes(probs), call_classes(probs, 0, "benign_first")
    # they can differ only where the benign line falls between them: p(Benign) the largest but below 1/2
    differ = argmax != first
    assert differ.any()
    assert (argmax[differ] == 0).all() and (probs[differ, 0] < 0.5).all()
    assert ((first == 0) == (probs[:, 0] >= 0.5)).all()


def test_refusals():
    with pytest.raises(ValueError, match="unknown call rule"):
        call_classes(np.ones((1, 4)) / 4, 0, "vote")
    with pytest.raises(ValueError, match="needs a Benign class"):
        call_classes(np.ones((1, 4)) / 4, None, "benign_first")


def test_metrics_count_the_calls_of_the_rule_they_are_given():
    y = np.array([1, 1, 0, 0])
    probs = np.array([[0.40, 0.30, 0.20, 0.10], [0.10, 0.80, 0.05, 0.05], [0.60, 0.20, 0.10, 0.10], [0.45, 0.05, 0.05, 0.45]])
    plain = classification_metrics(y, probs, CLASSES, bootstrap_resamples=10)
    first = classification_metrics(y, probs, CLASSES, bootstrap_resamples=10, call_rule="benign_first")
    assert plain["benign_vs_malignant"]["sensitivity"] == 0.5 and first["benign_vs_malignant"]["sensitivity"] == 1.0
    assert plain["benign_vs_malignant"]["specificity"] == 1.0 and first["benign_vs_malignant"]["specificity"] == 0.5
    assert first["call_rule"] == "benign_first"


def test_a_bundle_calls_by_its_rule_in_every_prediction(tiny_bundle, synth_dir):
    images = [str(p) for p in sorted(synth_dir.glob("*/*.jpg"))[:24]]
    first = dataclasses.replace(tiny_bundle, call_rule="benign_first")
    rows = Predictor(first).predict_paths(images)[0]
    probs = np.array([[r[f"p_{c}"] for c in tiny_bundle.classes] for r in rows])
    assert tiny_bundle.classes[0] == "Benign"
    expected = call_classes(probs, 0, "benign_first")
    assert [r["label"] for r in rows] == [tiny_bundle.classes[k] for k in expected]
    assert np.allclose([r["confidence"] for r in rows], probs[np.arange(len(rows)), expected], atol=1e-5)
