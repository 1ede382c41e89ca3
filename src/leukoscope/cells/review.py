"""Reviewed cell labels: the review.csv a lab exports from a case, read back to supervise training.

A reviewer confirms or reclassifies each detected cell as one of the model's classes, or as
"other leukocyte", "not a leukocyte" or "unsure". A cell is named by its field (the image's SHA-256,
or its file name) and its box in that field's pixels; training finds it again by running the same
detector and matching the box.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from leukoscope.cells.detect import Cell
from leukoscope.cells.ruler import check_pixel_scale
from leukoscope.errors import DataError

OTHER_LEUKOCYTE, NOT_A_LEUKOCYTE, UNSURE = "other leukocyte", "not a leukocyte", "unsure"
NON_CLASS_REVIEWS = (OTHER_LEUKOCYTE, NOT_A_LEUKOCYTE, UNSURE)
# pixel_scale: the field's pixels per pixel of the bundle's training fields where the case cut its cells (empty: each field
# taken as a training field's view), so that a fine-tune finds the cells the boxes name where the reviewer saw them
REVIEW_COLUMNS = (
    "case", "field", "field_sha256", "cell", "box_x0", "box_y0", "box_x1", "box_y1", "model_label", "reviewed_label", "reviewer", "time", "pixel_scale",
)  # fmt: skip
REQUIRED_COLUMNS = ("field", "box_x0", "box_y0", "box_x1", "box_y1", "reviewed_label")
MIN_BOX_IOU = 0.5  # a reviewed box names the detected cell it overlaps at least this much


def review_choices(classes: Sequence[str]) -> list[str]:
    """What a reviewer may call a cell: one of the model's classes, or one of the three other answers."""
    return [*classes, *NON_CLASS_REVIEWS]


@dataclass(frozen=True)
class ReviewedCell:
    row: int  # the row in a spreadsheet: the header is row 1
    field: str  # file name as reviewed
    field_sha256: str  # "" when the review names the field by file name only
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the field's pixels (x1, y1 exclusive)
    label: str
    pixel_scale: float | None = None  # where the case found the cell (None: not recorded, or the field taken as a training field's view)


def read_review(path: str | Path, classes: Sequence[str]) -> list[ReviewedCell]:
    """The reviewed cells of a review.csv (rows with an empty reviewed_label are skipped).

    A row that cannot be a cell of this model is refused with its row number: a reviewed label that
    is not among `classes` and the other answers, a box that is not four integers, no field.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: review file not found (data.cell_labels)")
    choices = review_choices(classes)
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}: not a review file, missing column(s) {', '.join(missing)}")
        out = []
        for row_number, row in enumerate(reader, start=2):
            label = (row.get("reviewed_label") or "").strip()
            if not label:
                continue
            if label not in choices:
                raise DataError(f"{path} row {row_number}: reviewed label {label!r} is not one of {', '.join(choices)}")
            field, sha = (row.get("field") or "").strip(), (row.get("field_sha256") or "").strip().lower()
            if not field and not sha:
                raise DataError(f"{path} row {row_number}: no field named")
            try:
                box = tuple(int(float(row[k])) for k in ("box_x0", "box_y0", "box_x1", "box_y1"))
            except (TypeError, ValueError):
                raise DataError(f"{path} row {row_number}: the box is not four numbers") from None
            if box[2] <= box[0] or box[3] <= box[1]:
                raise DataError(f"{path} row {row_number}: empty box {list(box)}")
            out.append(ReviewedCell(row_number, field, sha, box, label, _pixel_scale(row.get("pixel_scale"), f"{path} row {row_number}")))  # type: ignore[arg-type]
    return out


def _pixel_scale(text: str | None, where: str) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        scale = float(text)
    except ValueError:
        raise DataError(f"{where}: pixel_scale {text!r} is not a number") from None
    check_pixel_scale(scale, where)
    return scale


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_cell(cells: Sequence[Cell], box: Sequence[float]) -> int | None:
    """The index of the detected cell a reviewed box names, or None when none overlaps it enough."""
    if not cells:
        return None
    overlaps = [box_iou(c.box, box) for c in cells]
    best = max(range(len(cells)), key=overlaps.__getitem__)
    return best if overlaps[best] >= MIN_BOX_IOU else None
