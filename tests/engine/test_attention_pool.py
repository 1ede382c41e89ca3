"""A cell model with attention pooling: fitted after the cell classifier, saved in the bundle, and every
cell's weight exported by predict and by the case."""

import json

import numpy as np
import pytest

from leukoscope.config import load_config
from leukoscope.engine.train import train
from leukoscope.inference.predictor import Predictor, write_predictions
from leukoscope.scoring.bundle import load_bundle

pytestmark = pytest.mark.trains


def test_attention_pooling_trains_into_the_bundle_and_weighs_every_cell(cell_data, cell_overrides, case_fields, tmp_path):
    cfg = load_config("configs/cells.yaml", [f"data.root={cell_data}", *cell_overrides, "train.max_epochs=2", "cells.aggregate=attention", f"data.cache_dir={tmp_path / 'cache'}"])
    bundle = load_bundle(train(cfg, tmp_path / "run"))
    assert bundle.mil is not None and bundle.meta["aggregate"]["method"] == "gated_attention"
    rows, _ = Predictor(bundle).predict_paths([str(p) for p in case_fields], progress=False)
    for r in rows:
        assert len(r["cell_attention"]) == r["cells"] and sum(r["cell_attention"]) == pytest.approx(1, abs=1e-3)
        assert sum(r[f"p_{c}"] for c in bundle.classes) == pytest.approx(1, abs=1e-4)
    write_predictions(rows, tmp_path / "preds.json", bundle.classes)
    assert json.loads((tmp_path / "preds.json").read_text())[0]["cell_attention"] == rows[0]["cell_attention"]
    write_predictions(rows, tmp_path / "preds.csv", bundle.classes)
    assert "cell_attention" in (tmp_path / "preds.csv").read_text().splitlines()[0]

    from leukoscope.case.analyse import Case, read_field

    case = Case("attention", Predictor(bundle))
    case.add([read_field(str(p), 50_000_000) for p in case_fields[:2]])
    per_field = [sum(c["attention"] for c in case.cells if c["field"] == f["index"]) for f in case.fields]
    assert np.allclose(per_field, 1, atol=1e-3)
