import json

import numpy as np
import pytest
from PIL import Image

from leukoscope.case.analyse import FIELD_LEVEL_NOTE, Case, FieldInput, read_field
from leukoscope.case.report import write_case
from leukoscope.inference.predictor import Predictor


def _case(bundle, paths, **kwargs):
    case = Case("patient-7", Predictor(bundle), **kwargs)
    case.add([read_field(str(p), 50_000_000) for p in paths])
    return case


def test_a_case_holds_exactly_the_cells_predict_classifies(cell_bundle, case_fields, tmp_path):
    case = _case(cell_bundle, case_fields)
    rows, failures = Predictor(cell_bundle).predict_paths([str(p) for p in case_fields], progress=False)
    assert not failures
    assert [f["cells"] for f in case.fields] == [r["cells"] for r in rows]
    assert len(case.cells) == sum(r["cells"] for r in rows) > len(case_fields)
    for f, r in zip(case.fields, rows):  # the field's own call is predict's
        assert f["label"] == r["label"] and f["confidence"] == pytest.approx(r["confidence"], abs=1e-6)
    out = write_case(case, tmp_path / "case")
    doc = json.loads((out / "case.json").read_text())
    assert doc["level"] == "cell" and doc["case"] == "patient-7" and doc["model"]["weights_sha256"] == cell_bundle.weights_sha256
    cell = doc["cells"][0]
    assert set(cell) >= {"field", "box", "outline", "probabilities", "confidence", "abstain", "ood", "attention", "crop"}
    assert sum(cell["probabilities"].values()) == pytest.approx(1, abs=1e-4) and len(cell["outline"]) >= 3
    x0, y0, x1, y1 = cell["box"]
    assert all(x0 <= x <= x1 and y0 <= y <= y1 for x, y in cell["outline"])  # the outline lies in the cell's box
    crops = sorted((out / "cells").glob("*.png"))
    assert len(crops) == len(doc["cells"]) and Image.open(crops[0]).size == (112, 112)
    assert doc["summary"]["leukocytes"] == len(doc["cells"]) and doc["summary"]["fields"] == len(case_fields)


def test_unreadable_fields_are_kept_and_a_case_without_leukocytes_is_referred(cell_bundle, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (160, 160), (235, 225, 230)).save(blank)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    case = _case(cell_bundle, [blank, broken])
    assert [f["status"] for f in case.fields] == ["ok", "error"] and case.fields[1]["error"]
    summary = case.summary()
    assert summary["leukocytes"] == 0 and summary["call"]["label"] is None and "no leukocyte found" in summary["call"]["text"]
    assert summary["fields_unreadable"] == 1 and summary["fields_without_leukocytes"] == 1
    out = write_case(case, tmp_path / "case")
    assert "refer: not enough reliable cells" in (out / "case.html").read_text()


def test_a_smaller_case_written_over_a_larger_one_leaves_only_its_own_crops(cell_bundle, case_fields, tmp_path):
    write_case(_case(cell_bundle, case_fields), tmp_path / "case")
    small = _case(cell_bundle, case_fields[:1])
    write_case(small, tmp_path / "case")
    assert len(list((tmp_path / "case" / "cells").glob("*.png"))) == len(small.cells)


def test_a_whole_field_bundle_gives_field_level_calls_and_says_so(tiny_bundle, synth_dir, tmp_path):
    paths = sorted((synth_dir / "Pre").glob("*.jpg"))[:3]
    case = _case(tiny_bundle, paths, min_reliable=1)
    doc = case.to_json()
    assert doc["level"] == "field" and doc["note"] == FIELD_LEVEL_NOTE
    assert len(doc["cells"]) == 3 and doc["cells"][0]["box"][2:] == list(np.asarray(Image.open(paths[0])).shape[1::-1])
    assert not any(c["cut_by_frame"] for c in doc["cells"])  # a whole field's box is its frame, and no cell is cut
    out = write_case(case, tmp_path / "case")
    page = (out / "case.html").read_text()
    assert FIELD_LEVEL_NOTE in page and "Cut by the frame" not in page


def test_a_blurred_field_s_cells_are_not_reliable_and_the_case_says_why(cell_bundle, case_fields, tmp_path):
    from leukoscope.data.shifts import blur
    from leukoscope.scoring.predictions import OUT_OF_FOCUS

    sharp = read_field(str(case_fields[0]), 50_000_000)
    blurred = FieldInput("blurred.png", b"", blur(sharp.rgb, 2.5))
    case = Case("patient-7", Predictor(cell_bundle))
    case.add([sharp, blurred])
    assert OUT_OF_FOCUS not in case.fields[0].get("abstain_reason", "") and OUT_OF_FOCUS in case.fields[1]["abstain_reason"]
    theirs = [c for c in case.cells if c["field"] == case.fields[1]["index"]]
    assert theirs and all(c["abstain"] and OUT_OF_FOCUS in c["abstain_reason"] for c in theirs)
    assert not any(OUT_OF_FOCUS in c["abstain_reason"] for c in case.cells if c["field"] == case.fields[0]["index"])
    html = (write_case(case, tmp_path / "case") / "case.html").read_text()
    assert f"review: {OUT_OF_FOCUS}" in html and f"its field: {OUT_OF_FOCUS}" in html


def test_a_cell_the_frame_cuts_is_marked_so_in_the_case_and_on_its_page(cell_bundle, case_fields, tmp_path):
    """`cut_by_frame`: a leukocyte whose box reaches the field's frame shows only part of itself, and the model reads a
    benign one cut so as malignant more often (benchmarks/frame_cut_cells.py). The same cell, whole in its field, is
    not marked; in a copy of the field cut through its middle, it is."""
    case = _case(cell_bundle, case_fields)
    whole = next(c for c in case.cells if not c["cut_by_frame"] and c["box"][0] > 8)
    for cell in case.cells:
        field = case.fields[cell["field"]]
        x0, y0, x1, y1 = cell["box"]
        assert cell["cut_by_frame"] == (x0 <= 0 or y0 <= 0 or x1 >= field["width"] or y1 >= field["height"])
    x0, y0, x1, y1 = whole["box"]
    rgb = np.asarray(Image.open(whole["file"]).convert("RGB"))
    halved = tmp_path / "halved.png"
    Image.fromarray(rgb[:, (x0 + x1) // 2 :]).save(halved)
    cut_case = _case(cell_bundle, [halved])
    at_the_edge = [c for c in cut_case.cells if c["box"][0] == 0 and c["box"][1] < y1 and c["box"][3] > y0]
    assert at_the_edge and all(c["cut_by_frame"] for c in at_the_edge)
    page = (write_case(cut_case, tmp_path / "case") / "case.html").read_text()
    marked = sum(c["cut_by_frame"] for c in cut_case.cells)
    assert f"<td>Cut by the frame</td><td>{marked} of {len(cut_case.cells)}" in page and page.count("<br>cut by the frame") == marked
