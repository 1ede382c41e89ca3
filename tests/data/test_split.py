import shutil
from collections import Counter

import numpy as np
import pytest

from leukoscope.data.audit import audit_dataset
from leukoscope.data.manifest import build_manifest
from leukoscope.data.split import make_splits, rows_for_split, split_rows
from leukoscope.errors import DataError


@pytest.fixture()
def dup_dir(tmp_path, synth_dir):
    d = tmp_path / "dups"
    shutil.copytree(synth_dir, d)
    for i in range(4):  # exact duplicate pairs that a random split would leak
        shutil.copy(d / "Early" / f"synth-early-{i:04d}.jpg", d / "Early" / f"dup-{i}.jpg")
    return d


def test_groups_never_cross_splits_and_audit_reports_no_leak(dup_dir):
    manifest = build_manifest(dup_dir, workers=1)
    for seed in range(5):
        doc = make_splits(manifest, test_fraction=0.25, val_fraction=0.2, seed=seed)
        where = {p: s for s, paths in doc["splits"].items() for p in paths}
        for i in range(4):
            assert where[f"Early/dup-{i}.jpg"] == where[f"Early/synth-early-{i:04d}.jpg"]
        import json

        assert audit_dataset(dup_dir, splits=json.loads(json.dumps(doc)), workers=1)["leaks"] == []


def test_audit_finds_a_leak_in_a_bad_split(dup_dir):
    manifest = build_manifest(dup_dir, workers=1)
    doc = make_splits(manifest, test_fraction=0.25, seed=0)
    train, test = doc["splits"]["train"], doc["splits"]["test"]
    a, b = "Early/dup-0.jpg", "Early/synth-early-0000.jpg"
    for p in (a, b):
        for lst in (train, test, doc["splits"]["val"]):
            if p in lst:
                lst.remove(p)
    train.append(a)
    test.append(b)
    leaks = audit_dataset(dup_dir, splits=doc, workers=1)["leaks"]
    assert len(leaks) == 1 and set(leaks[0]["splits"]) == {"train", "test"}


def test_test_per_class_and_stratification(synth_dir):
    manifest = build_manifest(synth_dir, workers=1)
    doc = make_splits(manifest, test_per_class=3, val_fraction=0.25, seed=1)
    assert doc["counts"]["test"] == {"Benign": 3, "Early": 3, "Pre": 3, "Pro": 3}
    assert sum(len(v) for v in doc["splits"].values()) == 48
    with pytest.raises(DataError, match="too few"):
        make_splits(manifest, test_per_class=12)


def test_proportions_within_one_point_on_larger_set(tmp_path):
    from leukoscope.data.synth import synth_dataset

    d = synth_dataset(tmp_path / "big", per_class=25, size=48, seed=3)
    (d / "Pro" / "synth-pro-0000.jpg").unlink()
    manifest = build_manifest(d, workers=1)
    whole = Counter(r.label for r in manifest.rows)
    doc = make_splits(manifest, test_fraction=0.2, val_fraction=0.1, seed=0)
    for name, counts in doc["counts"].items():
        n = sum(counts.values())
        for c, k in whole.items():
            assert abs(counts[c] / n - k / len(manifest.rows)) <= 0.01 + 1 / n, (name, c)


def test_folds_are_group_aware_and_cover_the_pool(dup_dir):
    manifest = build_manifest(dup_dir, workers=1)
    doc = make_splits(manifest, test_fraction=0.2, folds=3, seed=0)
    pool = set(doc["splits"]["train"]) | set(doc["splits"]["val"])
    vals = [set(f["val"]) for f in doc["folds"]]
    assert set().union(*vals) == pool and sum(map(len, vals)) == len(pool)
    for f in doc["folds"]:
        for i in range(4):
            pair = {f"Early/dup-{i}.jpg", f"Early/synth-early-{i:04d}.jpg"}
            assert pair <= set(f["train"]) or pair <= set(f["val"]) or not pair & pool


def test_split_is_deterministic_and_records_seed(synth_dir):
    manifest = build_manifest(synth_dir, workers=1)
    a, b = make_splits(manifest, seed=7), make_splits(manifest, seed=7)
    assert a == b and a["seed"] == 7 and a["dataset_fingerprint"] == manifest.fingerprint
    assert make_splits(manifest, seed=8)["splits"] != a["splits"]
    rows = rows_for_split(manifest, a, "test")
    assert len(rows) == len(a["splits"]["test"]) and all(np.isscalar(r.width) for r in rows)


def test_a_split_is_read_from_its_file_and_the_data_folder(tmp_path, synth_dir):
    import json

    manifest = build_manifest(synth_dir, workers=1)
    doc = make_splits(manifest, seed=3)
    (tmp_path / "splits.json").write_text(json.dumps(doc))
    rows = split_rows(synth_dir, tmp_path / "splits.json", "val")
    assert [manifest.relative_path(r) for r in rows] == doc["splits"]["val"] and len({r.label for r in rows}) == 4
    with pytest.raises(DataError, match="splits file not found"):
        split_rows(synth_dir, tmp_path / "none.json", "val")


def test_split_leaves_bad_files_out(tmp_path, synth_dir):
    d = tmp_path / "bad"
    shutil.copytree(synth_dir, d)
    (d / "Pro" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    doc = make_splits(build_manifest(d, workers=1), seed=0)
    assert [x["path"].split("/")[-1] for x in doc["excluded"]] == ["broken.jpg"]
    assert all("broken" not in p for paths in doc["splits"].values() for p in paths)


@pytest.mark.realdata
def test_real_split_paper_protocol(real_data):
    manifest = build_manifest(real_data)
    doc = make_splits(manifest, test_per_class=100, val_fraction=0.1, seed=0, variant="Original")
    assert doc["counts"]["test"] == {"Benign": 100, "Early": 100, "Pre": 100, "Pro": 100}
    assert audit_dataset(real_data, splits=doc)["leaks"] == []


def test_a_class_too_small_for_test_and_val_is_warned_about(tmp_path, synth_dir):
    d = tmp_path / "data"
    shutil.copytree(synth_dir, d)
    (d / "Rare").mkdir()
    shutil.copy(d / "Pre" / "synth-pre-0000.jpg", d / "Rare" / "only.jpg")
    doc = make_splits(build_manifest(d, workers=1), test_fraction=0.25, val_fraction=0.2, seed=0)
    assert doc["counts"]["train"]["Rare"] == 1
    assert doc["warnings"] == [
        "class Rare has no image in test (1 in all): its test figures cannot be measured",
        "class Rare has no image in val (1 in all): its val figures cannot be measured",
    ]
    no_val = make_splits(build_manifest(d, workers=1), test_fraction=0.25, val_fraction=0.0, seed=0)
    assert no_val["warnings"] == doc["warnings"][:1]  # no validation asked for, none missed
