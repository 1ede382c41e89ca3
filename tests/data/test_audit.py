import shutil
from collections import Counter

import cv2
import numpy as np
import pytest

from leukoscope.data.audit import audit_dataset


@pytest.fixture()
def messy_dir(tmp_path, synth_dir):
    """The synthetic set plus planted duplicates, a blank image and crafted bad files."""
    d = tmp_path / "messy"
    shutil.copytree(synth_dir, d)
    shutil.copy(d / "Pro" / "synth-pro-0001.jpg", d / "Pro" / "copy-of-0001.jpg")
    img = cv2.imread(str(d / "Pre" / "synth-pre-0002.jpg"))
    cv2.imwrite(str(d / "Pre" / "reshot-0002.jpg"), np.roll(img, 3, axis=1), [cv2.IMWRITE_JPEG_QUALITY, 70])
    cv2.imwrite(str(d / "Early" / "black.png"), np.zeros((96, 96, 3), np.uint8))
    (d / "Benign" / "zero.jpg").write_bytes(b"")
    (d / "Benign" / "text.jpg").write_text("not a jpeg")
    data = (d / "Benign" / "synth-benign-0000.jpg").read_bytes()
    (d / "Benign" / "truncated.jpg").write_bytes(data[:200])
    (d / "Benign" / "notes.txt").write_text("lab notes")
    (d / "Empty").mkdir()
    return d


def test_audit_finds_everything_planted(messy_dir):
    report = audit_dataset(messy_dir, workers=1)
    assert report["classes"] == {"Benign": 12, "Early": 13, "Pre": 13, "Pro": 13, "Empty": 0}
    reasons = {p.split("/")[-1]: r for p, r in ((x["path"], x["reason"]) for x in report["unreadable"])}
    assert set(reasons) == {"zero.jpg", "text.jpg", "truncated.jpg", "notes.txt"}
    assert "empty" in reasons["zero.jpg"] and "not an image" in reasons["notes.txt"]
    assert [b["path"].split("/")[-1] for b in report["blank"]] == ["black.png"]
    exact = [sorted(p.split("/")[-1] for p in g) for g in report["exact_duplicate_groups"]]
    assert exact == [["copy-of-0001.jpg", "synth-pro-0001.jpg"]]
    near = [sorted(p.split("/")[-1] for p in g) for g in report["near_duplicate_groups"]]
    assert near == [["reshot-0002.jpg", "synth-pre-0002.jpg"]]
    assert any("Empty" in w and "no readable" in w for w in report["warnings"])


def test_audit_warns_about_planted_annotation_shortcut(tmp_path):
    from leukoscope.data.synth import synth_dataset

    d = synth_dataset(tmp_path / "sc", per_class=6, size=128, seed=0, shortcut="annotation")
    report = audit_dataset(d, workers=1)
    assert report["annotation_red_share"]["Benign"] == 1.0
    assert any("annotation" in w for w in report["warnings"])


def test_audit_clean_synthetic_has_no_shortcut_warning(synth_dir):
    report = audit_dataset(synth_dir, workers=1)
    assert not any("annotation" in w for w in report["warnings"])
    assert report["exact_duplicate_groups"] == [] and report["near_duplicate_groups"] == []


@pytest.mark.realdata
def test_audit_on_real_release(real_data):
    report = audit_dataset(real_data)
    assert report["classes"] == {"Benign": 404, "Early": 885, "Pre": 863, "Pro": 704}
    assert report["n_images"] == 5712
    original = report["variants"]["Original"]
    exact_classes = Counter(g[0].split("/")[-2] for g in original["exact_duplicate_groups"])
    assert exact_classes["Pro"] >= 30 and set(exact_classes) == {"Pro"}
    near_classes = Counter(g[0].split("/")[-2] for g in original["near_duplicate_groups"])
    assert set(near_classes) == {"Benign", "Early", "Pre", "Pro"}
    blank_classes = Counter(b["label"] for b in report["variants"]["Segmented"]["blank"])
    assert blank_classes["Pro"] > 250
    assert original["blank"] == []
    assert any("annotation" in w and "Pro 0 %" in w for w in report["warnings"])
