import json
import shutil

import pytest

from leukoscope.scoring.bundle import BundleError, load_bundle


@pytest.fixture()
def bundle_copy(tmp_path, tiny_run):
    return shutil.copytree(tiny_run / "bundle", tmp_path / "bundle")


def _edit_meta(folder, change):
    meta = json.loads((folder / "bundle.json").read_text())
    change(meta)
    (folder / "bundle.json").write_text(json.dumps(meta))


def test_a_damaged_bundle_is_one_error_naming_the_file(bundle_copy):
    assert load_bundle(bundle_copy).classes == ["Benign", "Early", "Pre", "Pro"]
    weights = bundle_copy / "model.safetensors"
    intact = weights.read_bytes()
    weights.write_bytes(intact[:1000])  # an interrupted copy
    with pytest.raises(BundleError, match="model.safetensors: unreadable weights"):
        load_bundle(bundle_copy)
    weights.write_bytes(intact)
    _edit_meta(bundle_copy, lambda m: m.__setitem__("classes", m["classes"][:3]))
    with pytest.raises(BundleError, match="bundle.json: names 3 classes for a model with 4 outputs"):
        load_bundle(bundle_copy)
    _edit_meta(bundle_copy, lambda m: (m.__setitem__("classes", ["Benign", "Early", "Pre", "Pro"]), m.pop("calibration")))
    with pytest.raises(BundleError, match="bundle.json: incomplete, no 'calibration' entry"):
        load_bundle(bundle_copy)


def test_a_focus_floor_is_read_back_and_a_damaged_one_is_refused(bundle_copy):
    assert load_bundle(bundle_copy).focus is None  # a whole-field run checks no focus
    _edit_meta(bundle_copy, lambda m: m["abstain"].__setitem__("focus", {"floor": 0.27, "quantile": 0.005, "fill": 128}))
    focus = load_bundle(bundle_copy).focus
    assert (focus.floor, focus.quantile, focus.fill) == (0.27, 0.005, 128)
    _edit_meta(bundle_copy, lambda m: m["abstain"].__setitem__("focus", {"floor": 0.27}))
    with pytest.raises(BundleError, match="bundle.json: unreadable focus floor"):
        load_bundle(bundle_copy)
