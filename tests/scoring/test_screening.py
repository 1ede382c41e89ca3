import numpy as np
import pytest

from leukoscope.scoring.metrics import classification_metrics
from leukoscope.scoring.screening import screen_positive, screening_threshold, specificity_at_sensitivity, too_few_to_screen

CLASSES = ["Benign", "Early", "Pre", "Pro"]


def _fields(seed: int = 0, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities of a model that ranks benign fields higher in p(Benign), with overlap."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    logits = rng.normal(0, 1.0, (n, 4))
    logits[np.arange(n), y] += 2.0
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, probs


def test_the_cut_reaches_the_target_on_the_fields_it_was_chosen_on_and_no_lower_cut_does():
    y, probs = _fields()
    malignant = y != 0
    for target in (0.9, 0.95, 0.99, 1.0):
        cut = screening_threshold(probs[:, 0], malignant, target)
        sensitivity = (probs[malignant, 0] < cut).mean()
        assert sensitivity >= target
        lower = np.nextafter(np.sort(probs[malignant, 0])[np.sort(probs[malignant, 0]) < cut][-1], -np.inf)
        assert (probs[malignant, 0] < lower).mean() < target  # the lowest cut that reaches it: the most specific


def test_screening_only_adds_positives_to_the_plain_call():
    y, probs = _fields(1)
    plain = probs.argmax(1) != 0
    screened = screen_positive(probs, 0, screening_threshold(probs[:, 0], y != 0, 0.99))
    assert (screened >= plain).all() and screened.sum() > plain.sum()
    assert (screen_positive(probs, 0, None) == plain).all()


def test_metrics_report_the_screening_call_and_what_the_ranking_allows():
    y, probs = _fields(2)
    cut = screening_threshold(probs[:, 0], y != 0, 0.99)
    m = classification_metrics(y, probs, CLASSES, bootstrap_resamples=20, screen_threshold=cut)
    screening, plain = m["screening"], m["benign_vs_malignant"]
    assert screening["p_benign_below"] == cut
    assert screening["sensitivity"] >= 0.99 > plain["sensitivity"]
    assert screening["specificity"] < plain["specificity"]
    assert plain["specificity_at_99_sensitivity"] == pytest.approx(specificity_at_sensitivity(probs[:, 0], y != 0, 0.99))
    assert 0.5 < plain["auroc"] <= 1
    assert "screening" not in classification_metrics(y, probs, CLASSES, bootstrap_resamples=20)


def test_a_perfect_ranking_screens_with_full_specificity_and_bad_input_is_refused():
    p_benign = np.array([0.9, 0.8, 0.3, 0.2, 0.1])
    malignant = np.array([False, False, True, True, True])
    assert specificity_at_sensitivity(p_benign, malignant, 0.99) == 1.0
    assert screening_threshold(p_benign, np.zeros(5, bool), 0.99) is None
    with pytest.raises(ValueError, match="target sensitivity"):
        screening_threshold(p_benign, malignant, 1.5)


def test_the_conformal_cut_holds_the_target_on_new_fields_where_the_reached_cut_falls_short():
    rng = np.random.default_rng(3)
    n_val, target, draws = 150, 0.99, 4000
    p = rng.beta(1, 6, (draws, n_val + 1))  # malignant fields' p(Benign): n validation ones and a new one
    below = {}
    for rule in ("reached", "conformal"):
        cuts = np.array([screening_threshold(row[:-1], np.ones(n_val, bool), target, rule) for row in p])
        below[rule] = (p[:, -1] < cuts).mean()
    # the new field falls below the conformal cut with probability ceil(0.99 * 151) / 151 = 150/151, below the reached one 149/151
    assert below["conformal"] >= target > below["reached"]
    assert below["conformal"] == pytest.approx(150 / 151, abs=0.004) and below["reached"] == pytest.approx(149 / 151, abs=0.004)


def test_the_conformal_cut_lies_one_order_statistic_up_and_says_when_the_fields_are_too_few():
    p_benign = np.linspace(0.01, 0.5, 200)
    malignant = np.ones(200, bool)
    reached = screening_threshold(p_benign, malignant, 0.99)
    conformal = screening_threshold(p_benign, malignant, 0.99, "conformal")
    assert (p_benign < reached).sum() == 198 and (p_benign < conformal).sum() == 199  # ceil(0.99 * 201) = 199
    assert too_few_to_screen(200, 0.99, "conformal") is None and too_few_to_screen(99, 0.99, "conformal") is None
    assert "98 malignant validation fields" in too_few_to_screen(98, 0.99, "conformal") and "it needs 99" in too_few_to_screen(98, 0.99, "conformal")
    assert screening_threshold(p_benign[:50], malignant[:50], 0.99, "conformal") > p_benign[:50].max()  # too few: above them all
    assert too_few_to_screen(100, 0.99) is None and "it needs 100" in too_few_to_screen(99, 0.99)
    assert "no number of fields promises 100 %" in too_few_to_screen(500, 1.0, "conformal") and "promises no new field 100 %" in too_few_to_screen(500, 1.0)
    with pytest.raises(ValueError, match="screening rule"):
        screening_threshold(p_benign, malignant, 0.99, "hindsight")
