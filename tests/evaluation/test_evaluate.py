import csv
import json

import pytest


def test_evaluate_writes_predictions_metrics_and_report(cli, tmp_path, tiny_run, synth_dir):
    out = tmp_path / "eval"
    res = cli("evaluate", str(tiny_run / "bundle"), "--data", str(synth_dir), "--out", str(out), "--bootstrap", "100")
    assert res.returncode == 0, res.stderr[-3000:]
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    assert len(rows) == 48 and "true" in rows[0] and "p_Pro" in rows[0]
    m = json.loads((out / "metrics.json").read_text())
    for key in ("n", "accuracy", "accuracy_ci", "balanced_accuracy", "macro_f1", "macro_f1_ci", "per_class", "confusion_matrix", "ece", "mce", "cohen_kappa", "benign_vs_malignant"):
        assert key in m, key
    assert m["n"] == 48 and "auroc" in m["per_class"]["Pro"] and "specificity" in m["per_class"]["Pro"]
    kinds = {"no leukocyte found", "image statistics outside the training range", "features far from the training classes"}
    assert set(m["ood_reasons"]) <= kinds and bool(m["ood_reasons"]) == (m["ood_flagged"] > 0)
    assert sum(m["ood_reasons"].values()) >= m["ood_flagged"] == sum(r["ood"] == "True" for r in rows)
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4  # curves, confusion, ROC, reliability
    for section in ("Intended use", "Model card", "Limitations", "Most confident errors", "Per class", "Shortcut checks"):
        assert section in html
    assert "http://" not in html and "https://" not in html  # self-contained, opens offline
    assert "name focal, gamma 2.0" in html and "train: Benign " in html and "{&#x27;" not in html  # settings read as text, not Python reprs
    assert m["tta"] is False and "in one orientation (as the thresholds were set)" in html
    assert "malignant validation fields for 99.00 % sensitivity on new fields" in html  # the screening cut's promise
    res = cli("evaluate", str(tiny_run / "bundle"), "--data", str(synth_dir), "--out", str(tmp_path / "tta"), "--bootstrap", "20", "--tta")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "set on one orientation of each unit; read in the mean of 8 flips and rotations" in res.stderr
    assert json.loads((tmp_path / "tta" / "metrics.json").read_text())["tta"] is True
    assert "as the mean of 8 flips and rotations, the thresholds set on one" in (tmp_path / "tta" / "report.html").read_text()


def test_evaluate_a_split_of_a_splits_file(cli, tmp_path, tiny_run):
    from leukoscope.scoring.bundle import load_bundle

    bundle = load_bundle(tiny_run / "bundle")
    data = bundle.meta["data"]["root"]
    out = tmp_path / "eval"
    res = cli("evaluate", str(tiny_run / "bundle"), "--data", data, "--splits", str(tiny_run / "splits.json"), "--split", "test", "--out", str(out), "--bootstrap", "50")
    assert res.returncode == 0, res.stderr[-3000:]
    splits = json.loads((tiny_run / "splits.json").read_text())
    m = json.loads((out / "metrics.json").read_text())
    assert m["n"] == len(splits["splits"]["test"])
    assert m["accuracy"] == pytest.approx(bundle.meta["metrics"]["test"]["accuracy"])


def test_fields_with_too_few_leukocytes_are_flagged_at_the_minimum_given(cli, tmp_path, cell_run, tiny_run):
    out = tmp_path / "eval"
    data = json.loads((cell_run / "splits.json").read_text())["root"]
    args = ("--data", data, "--splits", str(cell_run / "splits.json"), "--split", "test", "--bootstrap", "20", "--min-leukocytes", "2")
    res = cli("evaluate", str(cell_run / "bundle"), *args, "--out", str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    few = [r for r in rows if r["cells"] == "1"]  # synthetic fields hold 1-3 leukocytes
    assert few and all(r["abstain"] == "True" and "too few leukocytes to call (1 < 2)" in r["abstain_reason"] for r in few)
    assert not any("too few" in r["abstain_reason"] for r in rows if r["cells"] != "1")
    m = json.loads((out / "metrics.json").read_text())
    assert m["min_leukocytes"] == 2 and m["too_few_leukocytes"] == len(few) and m["abstained"] >= len(few)
    assert f"{len(few)} with fewer than 2 leukocytes" in res.stdout
    assert "too few leukocytes to call (fewer than 2)" in (out / "report.html").read_text()
    predicted = cli("predict", str(cell_run / "bundle"), *(r["path"] for r in few[:2]), "--min-leukocytes", "2", "--out", str(tmp_path / "p.csv"))
    assert predicted.returncode == 0 and f"{len(few[:2])} with too few leukocytes to call (fewer than 2)" in predicted.stdout
    whole = cli("evaluate", str(tiny_run / "bundle"), *args, "--out", str(tmp_path / "whole"))
    assert whole.returncode == 2 and "--min-leukocytes 2: a whole-field model counts no leukocytes" in whole.stderr
