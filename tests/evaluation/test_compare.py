import csv

import pytest

from leukoscope.errors import DataError
from leukoscope.evaluation.compare import compare_predictions, mcnemar_exact


def test_mcnemar_known_table():
    # exact two-sided binomial: b=1, c=9 -> 2 * P(X <= 1 | n=10, p=.5) = 2 * 11/1024
    assert mcnemar_exact(1, 9) == pytest.approx(22 / 1024)
    assert mcnemar_exact(5, 5) == pytest.approx(1.0)
    assert mcnemar_exact(0, 0) == 1.0


def _write(path, truth, pred):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "true"])
        for i, (t, p) in enumerate(zip(truth, pred)):
            w.writerow([f"img{i}.jpg", p, t])


def test_compare_detects_a_real_difference_and_not_a_tiny_one(tmp_path):
    truth = ["A", "B"] * 100
    good = list(truth)
    bad = [("B" if t == "A" else "A") if i % 3 == 0 else t for i, t in enumerate(truth)]
    _write(tmp_path / "good.csv", truth, good)
    _write(tmp_path / "bad.csv", truth, bad)
    r = compare_predictions(tmp_path / "good.csv", tmp_path / "bad.csv", resamples=300)
    assert r["significant"] and r["mcnemar_p"] < 1e-6 and r["accuracy_difference_ci"][0] > 0
    almost = list(truth)
    almost[0] = "B"
    _write(tmp_path / "almost.csv", truth, almost)
    r = compare_predictions(tmp_path / "good.csv", tmp_path / "almost.csv", resamples=300)
    assert not r["significant"] and "no significant difference" in r["conclusion"]


def test_compare_needs_common_images(tmp_path):
    _write(tmp_path / "a.csv", ["A"], ["A"])
    with open(tmp_path / "b.csv", "w") as fh:
        fh.write("path,label,true\nother.jpg,A,A\n")
    with pytest.raises(DataError, match="share no image"):
        compare_predictions(tmp_path / "a.csv", tmp_path / "b.csv")
