import numpy as np
import pytest

from leukoscope.config import load_config
from leukoscope.data.synth import synth_dataset
from leukoscope.engine.bundle import load_bundle
from leukoscope.engine.train import train
from leukoscope.evaluation.evaluate import labelled_paths
from leukoscope.cells.swap import remove_leukocytes
from leukoscope.evaluation.shortcuts import run_shortcut_checks
from leukoscope.inference.predictor import Predictor


def _train_on(tmp_path, shortcut):
    data = synth_dataset(tmp_path / "data", per_class=36, size=96, seed=4, shortcut=shortcut)
    cfg = load_config(
        "configs/smoke.yaml",
        [f"data.root={data}", "preprocess.size=96", "model.kwargs.input_size=96", "train.max_epochs=14", "data.batch_size=16", "eval.bootstrap=20", f"data.cache_dir={tmp_path / 'cache'}"],
    )
    train(cfg, tmp_path / "run")
    bundle = load_bundle(tmp_path / "run" / "bundle")
    paths, truth = labelled_paths(bundle, data, tmp_path / "run" / "splits.json", "test")
    return Predictor(bundle), paths, truth


@pytest.mark.parametrize("shortcut,failing", [("annotation", "annotation"), ("background", "leukocyte")])
def test_checks_fail_for_a_model_trained_on_a_planted_shortcut(tmp_path, shortcut, failing):
    predictor, paths, truth = _train_on(tmp_path, shortcut)
    result = run_shortcut_checks(predictor, paths, truth)
    normal = result["results"]["normal"]["accuracy"]
    assert normal >= 0.6, f"the model should have learned the planted {shortcut} shortcut, got {normal}"  # chance is 0.25
    assert not result["passed"]
    assert any(failing in w for w in result["warnings"])


def test_removing_leukocytes_leaves_none_to_detect():
    from leukoscope.cells.detect import detect_leukocytes
    from leukoscope.data.synth import synth_field

    rgb, cells = synth_field("Pro", np.random.default_rng(1), size=224, n_cells=2)
    assert len(detect_leukocytes(rgb)[0]) == 2
    assert detect_leukocytes(remove_leukocytes(rgb))[0] == []
