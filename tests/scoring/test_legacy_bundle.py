"""A bundle written by an earlier package layout still loads and predicts the same.

Bundles name their architecture and statistics, never module paths: moving code must not break
the models a lab already has. The fixture was frozen by tests/fixtures/make_legacy_bundle.py
before the re-layering of issue 16.
"""

import json
from pathlib import Path

import numpy as np

from leukoscope.inference.predictor import Predictor
from leukoscope.scoring.bundle import load_bundle

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy-bundle"


def test_a_bundle_of_the_previous_layout_loads_and_predicts_the_same():
    expected = json.loads((LEGACY / "expected.json").read_text())
    bundle = load_bundle(LEGACY / "bundle")
    rows, failures = Predictor(bundle).predict_paths([str(LEGACY / e["file"]) for e in expected], progress=False)
    assert not failures
    for row, want in zip(rows, expected):
        np.testing.assert_allclose(row["_logits"], want["_logits"], atol=1e-5)
        np.testing.assert_allclose([row[f"p_{c}"] for c in bundle.classes], [want[f"p_{c}"] for c in bundle.classes], atol=1e-3)
        assert (row["ood"], row["abstain"]) == (want["ood"], want["abstain"])
