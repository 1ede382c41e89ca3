import json

import pytest

from leukoscope.config import load_config
from leukoscope.experiments.cv import run_cv, summarise_folds

pytestmark = pytest.mark.trains


def test_cv_trains_each_fold_and_pools(tmp_path):
    cfg = load_config(
        "configs/smoke.yaml",
        ["data.synth_per_class=12", "preprocess.size=48", "model.kwargs.input_size=48", "train.max_epochs=1", "eval.bootstrap=20", f"data.cache_dir={tmp_path / 'cache'}"],
    )
    summary = run_cv(cfg, 2, tmp_path / "cv")
    assert [f["fold"] for f in summary["folds"]] == [0, 1]
    splits = json.loads((tmp_path / "cv" / "splits.json").read_text())
    val_sizes = [len(f["val"]) for f in splits["folds"]]
    assert summary["val"]["pooled_n"] == sum(val_sizes)  # every train+val image is held out exactly once
    for k in range(2):
        run = json.loads((tmp_path / "cv" / f"fold-{k}" / "splits.json").read_text())
        assert run == splits
    assert json.loads((tmp_path / "cv" / "cv.json").read_text()) == summary


def test_summary_statistics():
    folds = [
        {"fold": 0, "val": {"n": 10, "accuracy": 0.8, "macro_f1": 0.7}, "test": {}},
        {"fold": 1, "val": {"n": 10, "accuracy": 0.6, "macro_f1": 0.5}, "test": {}},
    ]
    s = summarise_folds(folds)
    assert s["val"]["accuracy_mean"] == pytest.approx(0.7) and s["val"]["accuracy_sd"] == pytest.approx(0.1414, abs=1e-3)
    assert s["val"]["pooled_accuracy"] == pytest.approx(0.7) and s["val"]["pooled_n"] == 20
    lo, hi = s["val"]["pooled_accuracy_ci"]
    assert lo < 0.7 < hi
