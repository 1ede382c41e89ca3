"""`leukoscope ensemble`: two cell models of different seeds joined into one bundle that averages them,
calibrated anew on their validation split; members that could not stand for one model are refused."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from leukoscope.cli import main
from leukoscope.config import load_config
from leukoscope.data.images import read_rgb
from leukoscope.engine.ensemble import EnsembleError, bundle_run_data, join_bundles
from leukoscope.engine.train import train
from leukoscope.errors import ConfigError
from leukoscope.explain.overlays import explanation_panel
from leukoscope.inference.export import export_bundle
from leukoscope.inference.predictor import Predictor
from leukoscope.models.ensemble import Ensemble
from leukoscope.scoring.bundle import load_bundle
from leukoscope.scoring.calibration import softmax
from leukoscope.scoring.runner import run_model

pytestmark = pytest.mark.trains


@pytest.fixture(scope="module")
def member_runs(cell_data, cell_overrides, tmp_path_factory) -> list[Path]:
    """Two attention-pooled cell models of seeds 0 and 1 on one split."""
    root = tmp_path_factory.mktemp("members")
    runs = []
    for seed in (0, 1):
        split = [f"data.splits={runs[0] / 'splits.json'}"] if runs else []
        overrides = [*cell_overrides, "train.max_epochs=3", "cells.aggregate=attention", f"train.seed={seed}", *split]
        cfg = load_config("configs/cells.yaml", [f"data.root={cell_data}", *overrides, f"data.cache_dir={root / 'cache'}"])
        train(cfg, root / f"seed{seed}")
        runs.append(root / f"seed{seed}")
    return runs


@pytest.fixture(scope="module")
def joined(member_runs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ensemble") / "run"
    assert main(["ensemble", *(str(r / "bundle") for r in member_runs), "--out", str(out), "--set", "eval.target_error=0.05"]) == 0
    return out


def test_the_joined_bundle_averages_its_members_and_is_calibrated_anew(member_runs, joined, case_fields):
    members = [load_bundle(r / "bundle") for r in member_runs]
    bundle = load_bundle(joined / "bundle")
    assert isinstance(bundle.model, Ensemble) and bundle.meta["model"]["name"] == "ensemble"
    assert [m["weights_sha256"] for m in bundle.meta["training"]["ensemble_of"]] == [m.weights_sha256 for m in members]
    assert bundle.meta["abstain"]["target_error"] == 0.05 and bundle.focus is not None and bundle.ood is not None
    assert set(bundle.meta["metrics"]) == {"val", "test"} and (joined / "splits.json").read_text() == (member_runs[0] / "splits.json").read_text()

    predictor = Predictor(bundle)
    crops = np.concatenate([predictor.units(read_rgb(p)) for p in case_fields[:3]])
    logits, feats = run_model(bundle.model, crops, bundle.mean, bundle.std, features=True)
    alone = [run_model(m.model, crops, m.mean, m.std, features=True) for m in members]
    assert np.allclose(logits, np.mean([a[0] for a in alone], axis=0), atol=1e-5)
    assert np.allclose(feats, np.concatenate([a[1] for a in alone], axis=1), atol=1e-5)

    # a field's call: the mean of the members' field log-probabilities, each at its own temperature, then the ensemble's
    bag = torch.from_numpy(feats[None]), torch.ones(1, len(crops), dtype=torch.bool)
    member_log_p = [torch.log_softmax(m.mil(torch.from_numpy(a[1][None]), bag[1])[0] / m.mil_temperature, -1) for m, a in zip(members, alone)]
    with torch.no_grad():
        pooled, weights = bundle.mil(*bag)
    assert torch.allclose(pooled, torch.stack(member_log_p).mean(0), atol=1e-5)
    assert float(weights.sum()) == pytest.approx(1, abs=1e-5)
    field = bundle.meta["aggregate"]
    assert field["method"] == "gated_attention_ensemble" and [m["temperature"] for m in field["members"]] == [m.mil_temperature for m in members]
    pred = predictor.predict_units([crops])
    assert np.allclose(pred.probs[0], softmax(pooled.detach().numpy(), bundle.mil_temperature)[0], atol=1e-5)

    rows, _ = predictor.predict_paths([str(p) for p in case_fields], progress=False)
    assert all(r["status"] == "ok" and sum(r["cell_attention"]) == pytest.approx(1, abs=1e-3) for r in rows)


def test_the_joined_bundle_exports_and_explains(joined, case_fields, tmp_path):
    bundle = load_bundle(joined / "bundle")
    info = export_bundle(bundle, tmp_path / "ensemble.onnx", "onnx")
    assert info["parity_max_abs_prob_diff"] <= 1e-4
    panel, verdict = explanation_panel(bundle, read_rgb(case_fields[0]), "both")
    assert panel.ndim == 3 and verdict["label"] in bundle.classes


def test_members_that_cannot_stand_for_one_model_are_refused(member_runs, joined, tmp_path):
    first, second = (str(r / "bundle") for r in member_runs)
    with pytest.raises(EnsembleError, match="the same weights as"):
        join_bundles([first, first], tmp_path / "twice")
    with pytest.raises(EnsembleError, match="an ensemble already"):
        join_bundles([str(joined / "bundle"), first], tmp_path / "nested")
    with pytest.raises(ConfigError, match="train.seed=3: an ensemble takes eval"):
        join_bundles([first, second], tmp_path / "retrain", overrides=["train.seed=3"])

    moved = tmp_path / "other-split"
    shutil.copytree(member_runs[1], moved)
    splits = json.loads((moved / "splits.json").read_text())
    splits["splits"]["val"].append(splits["splits"]["train"].pop())  # one training field moved to validation
    (moved / "splits.json").write_text(json.dumps(splits))
    with pytest.raises(EnsembleError, match=r"other-split/bundle: cannot join .*: another split"):
        join_bundles([first, str(moved / "bundle")], tmp_path / "mixed")
    (moved / "splits.json").unlink()
    with pytest.raises(EnsembleError, match="no splits.json in its run folder"):
        join_bundles([first, str(moved / "bundle")], tmp_path / "unknown")
    assert not (tmp_path / "mixed").exists() and not (tmp_path / "unknown").exists()


def test_an_ensemble_is_not_trained_as_one_model(cell_data, cell_overrides, joined, tmp_path):
    cfg = load_config("configs/cells.yaml", [f"data.root={cell_data}", *cell_overrides, "model.name=ensemble", f"data.cache_dir={tmp_path}"])
    with pytest.raises(ConfigError, match="train its members, then join their bundles"):
        train(cfg, tmp_path / "run")
    cfg = load_config("configs/cells.yaml", [f"data.root={cell_data}", *cell_overrides, f"train.init_from={joined / 'bundle'}", f"data.cache_dir={tmp_path}"])
    with pytest.raises(ConfigError, match="an ensemble; fine-tune each of its members"):
        train(cfg, tmp_path / "tuned")


def test_a_field_whose_members_disagree_goes_to_review(member_runs, joined, cell_data, tmp_path):
    bundle = load_bundle(joined / "bundle")
    assert bundle.flag_disagreement and 0 <= bundle.meta["abstain"]["disagreement"]["validation_share"] <= 1
    fields = sorted(str(p) for p in cell_data.rglob("*.jpg"))[::4]
    rows, _ = Predictor(bundle).predict_paths(fields, progress=False)
    alone = [{r["path"]: r["label"] == "Benign" for r in Predictor(load_bundle(run / "bundle")).predict_paths(fields, progress=False)[0]} for run in member_runs]
    for r in rows:
        split = alone[0][r["path"]] != alone[1][r["path"]] and r["cells"] > 0
        assert ("the ensemble's members disagree (1 of 2 call it malignant)" in r["abstain_reason"]) == split, r

    # members made to disagree on every field: one pool pushed towards Benign, the other towards Pre-B
    with torch.no_grad():
        bundle.mil.pools[0].head[1].bias += torch.tensor([30.0, 0, 0, 0])
        bundle.mil.pools[1].head[1].bias += torch.tensor([0, 0, 30.0, 0])
    pushed, _ = Predictor(bundle).predict_paths(fields[:6], progress=False)
    assert all(r["cells"] and r["abstain"] and "members disagree (1 of 2 call it malignant)" in r["abstain_reason"] for r in pushed)

    quiet = tmp_path / "quiet"
    assert main(["ensemble", *(str(r / "bundle") for r in member_runs), "--out", str(quiet), "--set", "eval.flag_disagreement=false"]) == 0
    assert not load_bundle(quiet / "bundle").flag_disagreement


def test_a_refit_whose_split_orders_the_classes_otherwise_is_refused(member_runs, tmp_path):
    """`bundle_run_data` (what `join_bundles` and benchmarks/refit_pool.py load) takes the classes from the run's
    splits.json: one that lists them in another order would pair the model's outputs with the wrong names, and is
    refused, naming the bundle, before any fit."""
    moved = tmp_path / "reordered"
    shutil.copytree(member_runs[0], moved)
    splits = json.loads((moved / "splits.json").read_text())
    splits["classes"] = splits["classes"][::-1]
    (moved / "splits.json").write_text(json.dumps(splits))
    bundle = load_bundle(moved / "bundle")
    with pytest.raises(EnsembleError, match=rf"the data's classes \['Pro', 'Pre', 'Early', 'Benign'\] are not those of {bundle.path}"):
        bundle_run_data(bundle)
