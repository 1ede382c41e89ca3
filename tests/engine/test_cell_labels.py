"""Reviewed cells train: data.cell_labels supervises cells, train.init_from fine-tunes a bundle."""

import json

import pytest

from leukoscope.case.analyse import Case, read_field
from leukoscope.case.report import review_rows, write_review
from leukoscope.config import load_config
from leukoscope.engine.data import SmearDataModule
from leukoscope.engine.train import train
from leukoscope.errors import ConfigError, DataError
from leukoscope.inference.predictor import Predictor

pytestmark = pytest.mark.trains


@pytest.fixture(scope="module")
def review(cell_bundle, cell_data, cell_run, tmp_path_factory):
    """A reviewer's review.csv: every cell of two Benign training fields called Pro, one left out, one unsure."""
    splits = json.loads((cell_run / "splits.json").read_text())
    benign = [cell_data / p for p in splits["splits"]["train"] if p.startswith("Benign/")][:2]
    case = Case("review-test", Predictor(cell_bundle))
    case.add([read_field(str(p), 50_000_000) for p in benign])
    ids = [c["id"] for c in case.cells]
    reviews = {i: "Pro" for i in ids}
    reviews[ids[0]], reviews[ids[1]] = "not a leukocyte", "unsure"
    path = write_review(review_rows(case, reviews, "AB", "2026-12-01T10:00:00Z"), tmp_path_factory.mktemp("review") / "review.csv")
    return path, len(ids)


def test_reviewed_cells_take_their_reviewed_class_and_the_rest_keep_the_field_label(config, review, tmp_path):
    path, n_cells = review
    plain = SmearDataModule(config())
    plain.setup()
    reviewed = SmearDataModule(config(f"data.cell_labels={path}"))
    reviewed.setup()
    before, after = plain.split_counts()["train"], reviewed.split_counts()["train"]
    assert reviewed.review["supervised"] == n_cells - 2 and reviewed.review["left_out"] == 1 and reviewed.review["unsure"] == 1
    assert after["Pro"] - before["Pro"] == n_cells - 2
    assert before["Benign"] - after["Benign"] == n_cells - 1  # the unsure cell stays Benign, the left-out one is gone
    assert plain.split_counts()["test"] == reviewed.split_counts()["test"]  # evaluation keeps the field labels
    moved = SmearDataModule(config(f"data.cell_labels={path}", "cells.outline_jitter=2"))
    moved.setup()  # its outline copies leave the left-out cell out too, crop for crop
    assert moved.split_counts()["train"] == after and len(moved.datasets["train"].versions) == 3


def test_fine_tuning_from_a_bundle_with_reviewed_cells_runs_end_to_end(config, cell_run, cell_bundle, review, tmp_path):
    path, _ = review
    cfg = config(f"data.cell_labels={path}", f"train.init_from={cell_run / 'bundle'}", "train.max_epochs=1")
    bundle = train(cfg, tmp_path / "run")
    meta = json.loads((bundle / "bundle.json").read_text())
    assert meta["data"]["cell_labels"]["supervised"] > 0 and len(meta["data"]["cell_labels"]["sha256"]) == 64
    assert meta["data"]["init_from"]["weights_sha256"] == cell_bundle.weights_sha256
    assert meta["classes"] == cell_bundle.classes


def test_a_review_naming_a_cell_or_a_field_that_does_not_exist_is_refused_with_its_row(config, review, tmp_path):
    import csv

    path, _ = review
    rows = list(csv.DictReader(path.open()))
    for change, message in (({"box_x0": 0, "box_y0": 0, "box_x1": 6, "box_y1": 6}, "row 3: no detected cell at box"), ({"field_sha256": "0" * 64}, "row 3: field")):
        bad = [dict(rows[0]), {**rows[1], **change}]
        target = write_review(bad, tmp_path / "bad.csv")
        dm = SmearDataModule(config(f"data.cell_labels={target}"))
        with pytest.raises(DataError, match=message):
            dm.setup()
    whole_field = load_config("configs/smoke.yaml", [f"data.cell_labels={path}", f"data.cache_dir={tmp_path / 'cache'}"])
    with pytest.raises(DataError, match="set cells.enabled=true"):
        SmearDataModule(whole_field).setup()
