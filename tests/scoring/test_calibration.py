import numpy as np

from leukoscope.scoring.calibration import calibration_errors, fit_temperature, softmax


def test_temperature_scaling_lowers_ece_of_an_overconfident_model():
    rng = np.random.default_rng(0)
    n, k = 2000, 4
    y = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), y] += 1.0  # about 60 % accurate ...
    logits *= 6.0  # ... but with near-certain probabilities
    before, _ = calibration_errors(softmax(logits), y)
    t = fit_temperature(logits, y)
    after, _ = calibration_errors(softmax(logits, t), y)
    assert t > 3 and before > 0.2 and after < 0.05 and after < before / 4


def test_temperature_of_a_calibrated_model_is_about_one():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2, (5000, 3))
    probs = softmax(logits)
    y = np.array([rng.choice(3, p=p) for p in probs])
    assert 0.85 < fit_temperature(logits, y) < 1.15
