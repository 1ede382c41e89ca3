import shutil

import pytest

from leukoscope.data.discover import discover
from leukoscope.errors import DataError


def test_class_folders(synth_dir):
    found = discover(synth_dir)
    assert found.layout == "folders"
    assert found.classes == ["Benign", "Early", "Pre", "Pro"]
    assert len(found.samples) == 48


def test_release_layout_picks_variant(tmp_path, synth_dir):
    for variant in ("Original", "Segmented"):
        shutil.copytree(synth_dir, tmp_path / variant)
    (tmp_path / "Segmented" / "Pro" / "synth-pro-0000.jpg").unlink()
    assert discover(tmp_path).layout == "release"
    assert len(discover(tmp_path).samples) == 48
    assert len(discover(tmp_path, variant="Segmented").samples) == 47
    with pytest.raises(DataError, match="unknown variant"):
        discover(tmp_path, variant="Nope")


def test_csv_manifest_relative_paths_and_groups(tmp_path, synth_dir):
    shutil.copytree(synth_dir, tmp_path / "d")
    (tmp_path / "d" / "m.csv").write_text("path,label,group\nBenign/synth-benign-0000.jpg,Benign,p1\nPro/synth-pro-0000.jpg,Pro,p2\nmissing.jpg,Pro,p3\n")
    found = discover(tmp_path / "d" / "m.csv")
    assert [s.group for s in found.samples] == ["p1", "p2"]
    assert found.bad_files[0]["reason"] == "file not found"


def test_bad_inputs(tmp_path, synth_dir):
    with pytest.raises(DataError, match="no such file"):
        discover(tmp_path / "nope")
    (tmp_path / "bad.csv").write_text("file,class\n")
    with pytest.raises(DataError, match="missing column"):
        discover(tmp_path / "bad.csv")
    d = tmp_path / "tree"
    shutil.copytree(synth_dir / "Pro", d / "Pro")
    (d / "Empty").mkdir()
    (d / "Pro" / "notes.txt").write_text("hello")
    found = discover(d)
    assert any("holds no images" in w for w in found.warnings)
    assert any(b["path"].endswith("notes.txt") and "not an image" in b["reason"] for b in found.bad_files)
