import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    cohen_kappa_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from leukoscope.scoring.intervals import bootstrap, paired_difference, wilson
from leukoscope.scoring.metrics import classification_metrics, macro_f1

CLASSES = ["Benign", "Early", "Pre", "Pro"]


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    logits = rng.normal(0, 1, (200, 4))
    logits[np.arange(200), y] += 1.5
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, probs


def test_metrics_agree_with_sklearn(arrays):
    y, probs = arrays
    pred = probs.argmax(1)
    m = classification_metrics(y, probs, CLASSES, bootstrap_resamples=200)
    assert m["n"] == 200
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert m["cohen_kappa"] == pytest.approx(cohen_kappa_score(y, pred))
    for k, c in enumerate(CLASSES):
        assert m["per_class"][c]["precision"] == pytest.approx(precision_score(y, pred, labels=[k], average="macro"))
        assert m["per_class"][c]["recall"] == pytest.approx(recall_score(y, pred, labels=[k], average="macro"))
        assert m["per_class"][c]["auroc"] == pytest.approx(roc_auc_score(y == k, probs[:, k]))
        neg = y != k
        assert m["per_class"][c]["specificity"] == pytest.approx(((pred != k) & neg).sum() / neg.sum())
    lo, hi = m["accuracy_ci"]
    assert lo < m["accuracy"] < hi
    lo, hi = m["macro_f1_ci"]
    assert lo < m["macro_f1"] < hi
    bm = m["benign_vs_malignant"]
    malignant = y != 0
    assert bm["sensitivity"] == pytest.approx(((pred != 0) & malignant).sum() / malignant.sum())
    assert np.asarray(m["confusion_matrix"]).sum() == 200
    assert 0 <= m["ece"] <= m["mce"] <= 1


def test_wilson_known_values():
    # Wilson (1927) / Newcombe (1998) worked example: 81 of 263 -> 0.2553 to 0.3662
    lo, hi = wilson(81, 263)
    assert lo == pytest.approx(0.2553, abs=5e-4) and hi == pytest.approx(0.3662, abs=5e-4)
    lo, hi = wilson(100, 100)
    assert hi == 1.0 and lo == pytest.approx(0.9630, abs=5e-4)
    assert wilson(0, 0) == (0.0, 1.0)


def test_bootstrap_is_seeded_and_covers_the_mean():
    values = np.random.default_rng(1).normal(5, 1, 400)
    a = bootstrap(lambda idx: values[idx].mean(), len(values), resamples=500, seed=3)
    b = bootstrap(lambda idx: values[idx].mean(), len(values), resamples=500, seed=3)
    assert a == b and a[0] < values.mean() < a[1] and a[1] - a[0] < 0.3


def test_a_paired_difference_is_as_narrow_as_the_calls_that_changed():
    """Two runs on 400 fields that differ on 20 calls: unpaired, each accuracy alone spans about +-4 points."""
    rng = np.random.default_rng(0)
    before = rng.random(400) < 0.7
    after = before.copy()
    after[np.flatnonzero(before)[:20]] = False  # 20 right calls turned wrong: -5 points
    change, (low, high) = paired_difference(after, before, resamples=500)
    assert change == pytest.approx(-0.05)
    assert low < -0.05 < high < 0 and high - low < 0.05  # unpaired, the interval would be about 0.13 wide
    assert paired_difference(before, before) == (0.0, (0.0, 0.0))
    with pytest.raises(ValueError, match="shape"):
        paired_difference(before, before[:10])


def test_the_bootstraps_macro_f1_is_scikit_learns_with_classes_missing_never_called_or_called_outside_the_k():
    rng = np.random.default_rng(5)
    for trial in range(300):
        n, k = int(rng.integers(1, 40)), int(rng.integers(2, 6))
        y_true = rng.integers(0, k - (trial % 2), n)  # every other draw leaves the last class out of the truth
        y_pred = np.where(rng.random(n) < 0.7, y_true, rng.integers(0, k, n))
        expected = f1_score(y_true, y_pred, labels=list(range(k)), average="macro", zero_division=0)
        assert macro_f1(y_true, y_pred, k) == pytest.approx(expected, abs=1e-12)
        outside = np.where(rng.random(n) < 0.2, k, y_pred)  # calls of a class outside the k (as `compare` meets them)
        expected = f1_score(y_true, outside, labels=list(range(k)), average="macro", zero_division=0)
        assert macro_f1(y_true, outside, k) == pytest.approx(expected, abs=1e-12)
