import json
import subprocess
import sys

import pytest

from leukoscope.cli import main


def _run(*args):
    return subprocess.run([sys.executable, "-m", "leukoscope.cli", *args], capture_output=True, text=True)


def test_every_verb_has_help(capsys):
    from leukoscope.cli import build_parser

    verbs = build_parser()._subparsers._group_actions[0].choices
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    listing = capsys.readouterr().out
    assert info.value.code == 0 and all(f"\n    {verb} " in listing or f"\n    {verb}\n" in listing for verb in verbs)
    for verb in verbs:
        with pytest.raises(SystemExit) as info:
            main([verb, "--help"])
        assert info.value.code == 0


@pytest.mark.parametrize("verb", ["audit", "split"])
def test_missing_path_is_one_line_exit_2(tmp_path, verb):
    res = _run(verb, str(tmp_path / "missing"), "--out", str(tmp_path / "o.json"))
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "no such file" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "o.json").exists()


def test_synth_audit_split_end_to_end(tmp_path):
    assert main(["synth", str(tmp_path / "s"), "--per-class", "6", "--size", "64"]) == 0
    assert main(["split", str(tmp_path / "s"), "--test-per-class", "2", "--out", str(tmp_path / "sp.json")]) == 0
    assert main(["audit", str(tmp_path / "s"), "--splits", str(tmp_path / "sp.json"), "--out", str(tmp_path / "a.json")]) == 0
    report = json.loads((tmp_path / "a.json").read_text())
    for key in ("classes", "unreadable", "blank", "exact_duplicate_groups", "near_duplicate_groups", "image_sizes", "warnings", "leaks"):
        assert key in report
    assert report["leaks"] == []


def test_bad_files_do_not_traceback(tmp_path):
    main(["synth", str(tmp_path / "s"), "--per-class", "3", "--size", "64"])
    (tmp_path / "s" / "Pro" / "zero.jpg").write_bytes(b"")
    res = _run("audit", str(tmp_path / "s"), "--out", str(tmp_path / "a.json"))
    assert res.returncode == 0 and "Traceback" not in res.stderr
    assert "zero.jpg: empty file" in res.stdout
    res = _run("split", str(tmp_path / "s"), "--out", str(tmp_path / "splits.json"), "--test-fraction", "0.34")
    assert res.returncode == 0 and "Pro/zero.jpg: empty file (0 bytes)" in res.stderr.split("left out: ", 1)[1]


@pytest.mark.parametrize(
    "args, message",
    [
        (["synth", "out", "--per-class", "-3"], "--per-class: must be at least 1, got -3"),
        (["synth", "out", "--size", "big"], "--size: expected a whole number, got 'big'"),
        (["split", "data", "--test-fraction", "1.5"], "--test-fraction: must lie in (0, 1), got 1.5"),
        (["split", "data", "--val-fraction", "1"], "--val-fraction: must lie in [0, 1), got 1"),
        (["predict", "bundle", "x.jpg", "--out", "p.csv", "--batch-size", "0"], "--batch-size: must be at least 1, got 0"),
        (["predict", "bundle", "x.jpg", "--out", "p.csv", "--min-leukocytes", "-1"], "--min-leukocytes: must be at least 0, got -1"),
        (["serve", "bundle", "--port", "99999"], "--port: a TCP port is 1-65535, got 99999"),
        (["cells", "data", "--out", "c", "--context", "0"], "--context: must be above 0, got 0"),
        (["cv", "--config", "smoke", "--folds", "1"], "--folds: must be at least 2, got 1"),
    ],
)
def test_impossible_numbers_are_refused_by_name(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)  # nothing may be written where the relative paths point
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "args, message",
    [
        (["audit", "data", "--out", "taken"], "--out: taken is a folder; name the file to write"),
        (["predict", "bundle", "x.jpg", "--out", "taken"], "--out: taken is a folder; name the file to write"),
        (["export", "bundle", "--out", "taken"], "--out: taken is a folder; name the file to write"),
        (["evaluate", "bundle", "--data", "d", "--out", "notes.txt"], "--out: notes.txt is a file; name a folder to write into"),
        (["synth", "notes.txt"], "notes.txt is a file; name a folder to write into"),
    ],
)
def test_outputs_of_the_wrong_kind_are_refused_before_any_work(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taken").mkdir()
    (tmp_path / "notes.txt").write_text("mine\n")
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2 and message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "taken"] and (tmp_path / "notes.txt").read_text() == "mine\n"


# every verb that writes, with its required arguments and the output in a folder whose name is a file
OUTPUT_UNDER_A_FILE = {
    "synth": ["synth", "notes.txt/data"],
    "audit": ["audit", "data", "--out", "notes.txt/audit.json"],
    "split": ["split", "data", "--out", "notes.txt/splits.json"],
    "preprocess": ["preprocess", "--preview", "x.jpg", "--out", "notes.txt/preview.png"],
    "train": ["train", "--out", "notes.txt/run"],
    "evaluate": ["evaluate", "bundle", "--data", "d", "--out", "notes.txt/eval"],
    "predict": ["predict", "bundle", "x.jpg", "--out", "notes.txt/preds.csv"],
    "explain": ["explain", "bundle", "x.jpg", "--out", "notes.txt/overlays"],
    "case": ["case", "bundle", "x.jpg", "--out", "notes.txt/case"],
    "export": ["export", "bundle", "--out", "notes.txt/model.onnx"],
    "cells": ["cells", "data", "--out", "notes.txt/cells"],
    "probe": ["probe", "background", "data", "--out", "notes.txt/probe.json"],
    "cv": ["cv", "--out", "notes.txt/cv"],
    "compare": ["compare", "a.csv", "b.csv", "--out", "notes.txt/compare.json"],
    "ensemble": ["ensemble", "a", "b", "--out", "notes.txt/ensemble"],
}


def test_every_verb_that_writes_is_covered_by_the_parent_is_a_file_test():
    from leukoscope.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.choices and "predict" in a.choices)
    writers = {verb for verb, p in sub.choices.items() if any(a.dest == "out" for a in p._actions)}
    assert writers == set(OUTPUT_UNDER_A_FILE)


@pytest.mark.parametrize("verb", sorted(OUTPUT_UNDER_A_FILE))
def test_an_output_whose_parent_is_a_file_is_refused_in_one_line(tmp_path, monkeypatch, capsys, verb):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine\n")
    with pytest.raises(SystemExit) as info:
        main(OUTPUT_UNDER_A_FILE[verb])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "notes.txt is a file, not a folder" in err and "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"] and (tmp_path / "notes.txt").read_text() == "mine\n"


def test_a_missing_parent_folder_is_simply_created(tmp_path):
    from leukoscope.io_utils import write_json

    write_json(tmp_path / "new" / "deeper" / "out.json", {"ok": 1})
    assert (tmp_path / "new" / "deeper" / "out.json").read_text().startswith("{")


def test_case_writes_the_report_the_crops_and_a_review_sheet(cell_run, case_fields, tmp_path, capsys):
    import csv
    import json

    folder = tmp_path / "fields"
    folder.mkdir()
    for p in case_fields:
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "scan-notes.png").write_bytes(b"not a png")
    assert main(["case", str(cell_run / "bundle"), str(folder), "--out", str(tmp_path / "P-3"), "--min-cells", "2"]) == 0
    out = capsys.readouterr()
    doc = json.loads((tmp_path / "P-3" / "case.json").read_text())
    assert doc["case"] == "P-3" and len(doc["fields"]) == len(case_fields) + 1 and doc["summary"]["min_reliable"] == 2
    assert f"case P-3: {len(case_fields) + 1} field(s), {len(doc['cells'])} leukocyte(s)" in out.out
    assert "not read: " in out.err and "scan-notes.png" in out.err
    sheet = list(csv.DictReader((tmp_path / "P-3" / "review.csv").open(newline="")))
    assert len(sheet) == len(doc["cells"]) and not any(r["reviewed_label"] for r in sheet)
    assert len(list((tmp_path / "P-3" / "cells").glob("*.png"))) == len(doc["cells"])
