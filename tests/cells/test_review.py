import csv

import pytest

from leukoscope.cells.detect import Cell
from leukoscope.cells.review import REVIEW_COLUMNS, match_cell, read_review
from leukoscope.errors import DataError

CLASSES = ["Benign", "Early", "Pre", "Pro"]


def _write(path, rows, columns=REVIEW_COLUMNS):
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in columns})
    return path


ROW = {"field": "a.jpg", "box_x0": 10, "box_y0": 12, "box_x1": 40, "box_y1": 44, "reviewed_label": "Pre"}


def test_reads_reviewed_rows_and_skips_unreviewed_ones(tmp_path):
    path = _write(tmp_path / "review.csv", [ROW, {**ROW, "reviewed_label": ""}, {**ROW, "reviewed_label": "not a leukocyte", "field_sha256": "AB"}])
    cells = read_review(path, CLASSES)
    assert [(c.row, c.label, c.box) for c in cells] == [(2, "Pre", (10, 12, 40, 44)), (4, "not a leukocyte", (10, 12, 40, 44))]
    assert cells[1].field_sha256 == "ab"
    assert cells[0].pixel_scale is None  # not recorded: the fine-tune decides where to find the cells


def test_the_pixel_scale_a_case_found_its_cells_at_is_read_and_an_older_sheet_without_it_still_reads(tmp_path):
    cells = read_review(_write(tmp_path / "review.csv", [{**ROW, "pixel_scale": "1.7812"}, ROW]), CLASSES)
    assert [c.pixel_scale for c in cells] == [1.7812, None]
    older = [c for c in REVIEW_COLUMNS if c != "pixel_scale"]
    assert read_review(_write(tmp_path / "older.csv", [ROW], columns=older), CLASSES)[0].pixel_scale is None


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"reviewed_label": "Myeloblast"}, "row 3: reviewed label 'Myeloblast' is not one of Benign, Early, Pre, Pro, other leukocyte"),
        ({"box_x0": "left"}, "row 3: the box is not four numbers"),
        ({"box_x1": 5}, "row 3: empty box"),
        ({"field": ""}, "row 3: no field named"),
        ({"pixel_scale": "large"}, "row 3: pixel_scale 'large' is not a number"),
        ({"pixel_scale": "500"}, "row 3: pixel scale 500 is outside 0.05-50 x the training fields'"),
    ],
)
def test_a_row_that_cannot_be_a_cell_of_this_model_is_refused_with_its_row_number(tmp_path, bad, message):
    path = _write(tmp_path / "review.csv", [ROW, {**ROW, **bad}])
    with pytest.raises(DataError, match=message):
        read_review(path, CLASSES)


def test_a_file_that_is_not_a_review_is_refused(tmp_path):
    path = _write(tmp_path / "preds.csv", [{"path": "a.jpg"}], columns=["path", "label"])
    with pytest.raises(DataError, match="not a review file, missing column"):
        read_review(path, CLASSES)
    with pytest.raises(DataError, match="review file not found"):
        read_review(tmp_path / "missing.csv", CLASSES)


def test_a_box_names_the_cell_it_overlaps_most():
    cells = [Cell(20, 20, 10, (10, 10, 30, 30), 300), Cell(60, 60, 10, (50, 50, 70, 70), 300)]
    assert match_cell(cells, (52, 51, 71, 70)) == 1
    assert match_cell(cells, (10, 10, 30, 30)) == 0
    assert match_cell(cells, (30, 30, 50, 50)) is None  # touches both, overlaps neither enough
    assert match_cell([], (0, 0, 5, 5)) is None
