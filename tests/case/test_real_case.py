"""The case workflow on the development data: 30 test fields per class as one case each, and a
review that fine-tunes. A small cell model is trained for the module (one short epoch)."""

import csv
import json
import subprocess
import sys
import time

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.realdata, pytest.mark.trains]

CASE_SECONDS = 10.0  # the budget on 2 cores, model load and process start included


@pytest.fixture(scope="module")
def real_cell_run(real_data, tmp_path_factory):
    from leukoscope.config import load_config
    from leukoscope.engine.train import train

    root = tmp_path_factory.mktemp("real-cells")
    cfg = load_config("configs/cells.yaml", [f"data.root={real_data}", "train.max_epochs=1", "train.limit_train_batches=0.25", "eval.bootstrap=50", f"data.cache_dir={root / 'cache'}"])
    train(cfg, root / "run")
    return root / "run"


def _test_fields(run, real_data, label, n=30):
    splits = json.loads((run / "splits.json").read_text())
    return [str(real_data / "Original" / p) for p in splits["splits"]["test"] if p.startswith(f"{label}/")][:n]


@pytest.mark.parametrize("label", ["Benign", "Early", "Pre", "Pro"])
def test_a_case_of_30_real_fields_takes_under_10_s_and_counts_what_predict_counts(real_cell_run, real_data, tmp_path, label):
    fields = _test_fields(real_cell_run, real_data, label)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "leukoscope.cli", "case", str(real_cell_run / "bundle"), *fields, "--out", str(tmp_path / "case")], check=True, capture_output=True)
    seconds = time.perf_counter() - started
    preds = tmp_path / "preds.csv"
    subprocess.run([sys.executable, "-m", "leukoscope.cli", "predict", str(real_cell_run / "bundle"), *fields, "--out", str(preds)], check=True, capture_output=True)
    doc = json.loads((tmp_path / "case" / "case.json").read_text())
    per_field = [int(r["cells"]) for r in csv.DictReader(preds.open())]
    assert len(doc["cells"]) == sum(per_field) and [f["cells"] for f in doc["fields"]] == per_field
    print(f"\ncase of 30 {label} fields: {len(doc['cells'])} cells in {seconds:.1f} s; {doc['summary']['call']['text']}")
    assert seconds <= CASE_SECONDS


def test_a_review_of_real_cells_fine_tunes_the_model(real_cell_run, real_data, tmp_path):
    from leukoscope.case.analyse import Case, read_field
    from leukoscope.case.report import review_rows, write_review
    from leukoscope.config import load_config
    from leukoscope.engine.train import train
    from leukoscope.inference.predictor import Predictor
    from leukoscope.scoring.bundle import load_bundle

    splits = json.loads((real_cell_run / "splits.json").read_text())
    train_fields = [p for p in splits["splits"]["train"] if p.startswith("Pre/")][:20]
    case = Case("review", Predictor(load_bundle(real_cell_run / "bundle")))
    case.add([read_field(str(real_data / "Original" / p), 50_000_000) for p in train_fields])
    review = write_review(review_rows(case, {c["id"]: "Pre" for c in case.cells}, "sim"), tmp_path / "review.csv")
    cfg = load_config(
        "configs/cells.yaml",
        [f"data.root={real_data}", f"data.splits={real_cell_run / 'splits.json'}", f"data.cell_labels={review}", f"train.init_from={real_cell_run / 'bundle'}",
         "train.max_epochs=1", "train.limit_train_batches=0.1", "eval.bootstrap=50", f"data.cache_dir={real_cell_run.parent / 'cache'}"],
    )  # fmt: skip
    bundle = train(cfg, tmp_path / "run")
    meta = json.loads((bundle / "bundle.json").read_text())
    assert meta["data"]["cell_labels"]["supervised"] == len(case.cells) > 20
    assert meta["metrics"]["test"]["n"] >= 390  # the grouped test split, scored by field labels
