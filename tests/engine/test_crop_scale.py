"""data.pixel_size: a fine-tune cuts a lab's fields at the pixel scale `case` and `predict` cut them at."""

import json

import cv2
import numpy as np
import pytest

from leukoscope.case.analyse import Case, read_field
from leukoscope.case.report import review_rows, write_review
from leukoscope.cells.cache import training_field_crops
from leukoscope.cells.ruler import RED_CELL_UM, pixel_scale_from_size
from leukoscope.data.images import read_rgb
from leukoscope.data.synth import SYNTH_CLASSES, synth_field
from leukoscope.engine.crop_scale import crop_scale
from leukoscope.engine.data import SmearDataModule
from leukoscope.engine.train import train
from leukoscope.errors import ConfigError, DataError
from leukoscope.inference.pixel_scale import untold_pixel_scale
from leukoscope.inference.predictor import Predictor
from leukoscope.io_utils import file_sha256
from leukoscope.scoring.bundle import load_bundle

VIEW = 160 / 224  # the pixel scale of a 160 px field that shows a 224 px training field's view
LAB_MAGNIFICATION = 2.5  # a lab's objective against the one the session's cell run learnt from


def lab_fields(root, magnification=LAB_MAGNIFICATION, per_class=5):
    """Class folders of synthetic 160 px fields through the lab's objective, and their paths."""
    paths = []
    for c, label in enumerate(SYNTH_CLASSES):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            rgb, _ = synth_field(label, np.random.default_rng([97, c, i]), size=160, magnification=magnification)
            paths.append(root / label / f"lab-{i}.png")
            cv2.imwrite(str(paths[-1]), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return paths


@pytest.fixture(scope="module")
def magnified_lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    return root, lab_fields(root)


def test_a_fine_tune_measures_the_lab_s_red_cells_against_the_starting_bundle_s(config, cell_run, cell_bundle, magnified_lab):
    root, paths = magnified_lab
    start = f"train.init_from={cell_run / 'bundle'}"
    scale = crop_scale(config(f"data.root={root}", start), [str(p) for p in paths])
    assert scale.pixel_scale == pytest.approx(LAB_MAGNIFICATION * VIEW, rel=0.1)
    assert scale.reference["red_cell_px"] == cell_bundle.training_red_cell_px and "resampled to their pixel size" in scale.note
    record = scale.record()
    assert record["cut_at"] == pytest.approx(scale.pixel_scale, abs=1e-4) and record["field_scale"] == cell_bundle.training_field_scale
    # told: each field a training field's view, or a pixel size in µm; from scratch, untold, each field is a view as before
    assert crop_scale(config(f"data.root={root}", start, "data.pixel_size=field"), [str(p) for p in paths]).pixel_scale is None
    um = RED_CELL_UM / (cell_bundle.training_red_cell_px * LAB_MAGNIFICATION * VIEW)
    told = crop_scale(config(f"data.root={root}", start, f"data.pixel_size={um}"), [str(p) for p in paths])
    assert told.pixel_scale == pytest.approx(pixel_scale_from_size(um, cell_bundle.training_red_cell_px)) == pytest.approx(LAB_MAGNIFICATION * VIEW)
    assert crop_scale(config(f"data.root={root}"), [str(p) for p in paths]).reference is None


def test_a_pixel_size_a_run_cannot_use_fails_in_one_line(config, cell_run, tmp_path, smoke_config):
    blank = tmp_path / "blank"
    blank.mkdir()
    for i in range(4):  # plasma alone: no red cell to measure
        cv2.imwrite(str(blank / f"b{i}.png"), np.full((160, 160, 3), 230, np.uint8))
    paths = [str(p) for p in blank.iterdir()]
    with pytest.raises(DataError, match="data.pixel_size=auto: red cells could be measured in fewer than 3 of the training fields; give the pixel size in µm"):
        crop_scale(config("data.pixel_size=auto"), paths)
    untold = crop_scale(config(f"train.init_from={cell_run / 'bundle'}"), paths)  # a fine-tune that was not asked falls back to the view
    assert untold.pixel_scale is None and "each field taken as a training field's view" in untold.note
    with pytest.raises(DataError, match="µm across, got 50"):
        crop_scale(config("data.pixel_size=50"), paths)
    smoke_config.data.pixel_size = "auto"
    with pytest.raises(ConfigError, match="a pixel size sizes leukocyte crops"):
        crop_scale(smoke_config, paths)


@pytest.mark.trains
def test_a_fine_tune_cuts_a_lab_s_cells_as_predict_cuts_them_and_its_bundle_predicts_them_there(config, cell_run, magnified_lab, tmp_path):
    root, paths = magnified_lab
    cfg = config(f"data.root={root}", f"train.init_from={cell_run / 'bundle'}", "data.splits=", "data.test_fraction=0.2", "data.val_fraction=0.2",
                 "train.max_epochs=1", "train.lr=0.0005")  # fmt: skip
    tuned = load_bundle(train(cfg, tmp_path / "tuned"))
    assert tuned.meta["pixel_scale"]["cut_at"] == pytest.approx(LAB_MAGNIFICATION * VIEW, rel=0.1)
    # the adapted bundle's pixel scales still refer to the starting bundle's training fields: untold, the lab's images are cut as trained
    scale, warning = untold_pixel_scale(tuned, [str(p) for p in paths])
    assert scale == pytest.approx(tuned.meta["pixel_scale"]["cut_at"], rel=0.02) and "another magnification" in warning
    field = paths[0]
    cut = training_field_crops(field, cfg.cells, cfg.preprocess.max_pixels, scale, tuned.training_field_scale)
    _, predicted = Predictor(tuned, pixel_scale=scale).cell_units(read_rgb(field))
    assert len(cut.cells) == len(predicted.cells) > 0
    assert np.array_equal(np.stack(cut.crops), np.stack(predicted.crops))
    as_view = training_field_crops(field, cfg.cells, cfg.preprocess.max_pixels)  # as each field's view, it would have cut other crops
    assert len(as_view.crops) != len(cut.crops) or not np.array_equal(np.stack(as_view.crops), np.stack(cut.crops))
    assert json.loads((tmp_path / "tuned" / "bundle" / "bundle.json").read_text())["pixel_scale"]["bundle"] == str(cell_run / "bundle")


@pytest.mark.trains
def test_a_fine_tune_finds_a_case_s_reviewed_cells_at_the_scale_the_case_found_them(config, cell_run, cell_bundle, magnified_lab, tmp_path):
    root, paths = magnified_lab
    told = 2.2 * VIEW  # the lab told the case its pixel size: near, not equal to, what the red cells measure (2.5 x VIEW)
    case = Case("lab-review", Predictor(cell_bundle, pixel_scale=told))
    case.add([read_field(str(p), 50_000_000) for p in paths])
    review = write_review(review_rows(case, {c["id"]: "Pro" for c in case.cells}, "AB"), tmp_path / "review.csv")
    dm = SmearDataModule(config(f"data.root={root}", f"train.init_from={cell_run / 'bundle'}", "data.splits=", "data.test_fraction=0.2",
                                f"data.cell_labels={review}"))  # fmt: skip
    dm.setup()
    assert dm.crop_scale.pixel_scale == pytest.approx(told, abs=1e-4) and "where the review's cells were found" in dm.crop_scale.note
    in_train = {file_sha256(root / rel) for rel in dm.splits["splits"]["train"]}
    rows = [c for c in case.cells if case.fields[c["field"]]["sha256"] in in_train]
    assert dm.review["supervised"] == len(rows) > 0  # every reviewed cell of a training field found again, none refused


def test_a_review_found_at_another_scale_than_the_training_fields_red_cells_give_is_refused(config, cell_run, magnified_lab):
    root, paths = magnified_lab
    cfg = config(f"data.root={root}", f"train.init_from={cell_run / 'bundle'}", "data.cell_labels=review.csv")
    # a review made on the training lab's fields (a view's scale) beside a 2.5x lab's fields: two microscopes in one run
    with pytest.raises(DataError, match=r"review.csv: its cells were found at pixel scale 0.71, but the training fields' red cells give \d\.\d\d \(fields of two microscopes\?\)"):
        crop_scale(cfg, [str(p) for p in paths], [VIEW] * 5)
    assert crop_scale(cfg, [str(p) for p in paths], [2.2 * VIEW] * 5).pixel_scale == pytest.approx(2.2 * VIEW)  # one microscope, near enough
    told = config(f"data.root={root}", f"train.init_from={cell_run / 'bundle'}", "data.cell_labels=review.csv", "data.pixel_size=field")
    assert crop_scale(told, [str(p) for p in paths], [VIEW] * 5).pixel_scale is None  # told, it cuts as told
