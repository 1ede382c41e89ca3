import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from leukoscope.errors import OutputError
from leukoscope.explain.overlays import HEADER, explanation_panel
from leukoscope.inference.export import (
    ExportError,
    OnnxRunner,
    export_bundle,
    parity_images,
)
from leukoscope.inference.predictor import Predictor
from leukoscope.scoring.bundle import load_bundle
from leukoscope.scoring.runner import run_model


def test_onnx_export_parity_and_dynamic_batch(tmp_path, tiny_bundle):
    info = export_bundle(tiny_bundle, tmp_path / "m.onnx", "onnx")
    assert info["parity_max_abs_prob_diff"] <= 1e-4
    runner = OnnxRunner(tmp_path / "m.onnx", tiny_bundle.mean, tiny_bundle.std, batch_size=5)
    images = parity_images(tiny_bundle, n=7)  # 7 = one batch of 5 and one of 2: the batch axis is dynamic
    logits, feats = runner.run(images)
    assert logits.shape == (7, 4) and feats.shape[0] == 7


def test_torchscript_export(tmp_path, tiny_bundle):
    info = export_bundle(tiny_bundle, tmp_path / "m.pt", "torchscript")
    assert (tmp_path / "m.pt").is_file() and info["parity_max_abs_prob_diff"] <= 1e-4


def test_export_fails_loudly_on_parity_error(tmp_path, tiny_bundle, monkeypatch):
    import leukoscope.inference.export as export_mod

    monkeypatch.setattr(export_mod, "PARITY_TOLERANCE", -1.0)  # no export can pass: the check must refuse it
    with pytest.raises(ExportError, match="differs from PyTorch"):
        export_bundle(tiny_bundle, tmp_path / "bad.onnx", "onnx")
    assert not (tmp_path / "bad.onnx").exists()


def test_export_onto_a_folder_is_refused_and_the_folder_kept(tmp_path, tiny_bundle):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match="models: is a folder; name the file to write"):
        export_bundle(tiny_bundle, tmp_path / "models", "onnx")
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["keep.txt"] and [p.name for p in tmp_path.iterdir()] == ["models"]


def test_onnx_backend_on_a_read_only_bundle_exports_into_the_cache(tmp_path, tiny_run, monkeypatch):
    import shutil

    import leukoscope.inference.export as export_mod

    # without the model.onnx an earlier test may have exported beside the shared bundle
    bundle_dir = shutil.copytree(tiny_run / "bundle", tmp_path / "shared" / "bundle", ignore=shutil.ignore_patterns("model.onnx"))
    real_export = export_mod.export_bundle

    def read_only_bundle(bundle, out, fmt="onnx", **kwargs):  # what the OS answers on a read-only share (root ignores modes)
        if Path(out).parent == bundle_dir:
            raise PermissionError(13, "Permission denied", str(out))
        return real_export(bundle, out, fmt, **kwargs)

    monkeypatch.setattr(export_mod, "export_bundle", read_only_bundle)
    monkeypatch.setenv("LEUKOSCOPE_CACHE", str(tmp_path / "cache"))
    bundle = load_bundle(bundle_dir)
    runner = OnnxRunner.for_bundle(bundle)
    assert runner.path.parent == tmp_path / "cache" / "onnx" and not (bundle_dir / "model.onnx").exists()
    images = parity_images(bundle, n=3)
    logits, _ = runner.run(images)
    torch_logits, _ = run_model(bundle.model, images, bundle.mean, bundle.std)
    np.testing.assert_allclose(logits, torch_logits, atol=1e-4)
    assert OnnxRunner.for_bundle(bundle).path == runner.path  # exported once


def test_predict_with_onnx_backend_matches_torch(tmp_path, tiny_run, synth_dir):
    import shutil

    bundle_dir = tmp_path / "bundle"
    shutil.copytree(tiny_run / "bundle", bundle_dir)
    paths = [str(p) for p in sorted(synth_dir.rglob("*.jpg"))[:10]]
    bundle = load_bundle(bundle_dir)
    torch_rows, _ = Predictor(bundle).predict_paths(paths, progress=False)
    onnx_rows, _ = Predictor(bundle, backend="onnx").predict_paths(paths, progress=False)
    for a, b in zip(torch_rows, onnx_rows):
        assert a["label"] == b["label"] and abs(a["confidence"] - b["confidence"]) < 1e-4


def test_explain_writes_overlays(cli, tmp_path, tiny_run, synth_dir):
    images = [str(p) for p in sorted((synth_dir / "Pro").glob("*.jpg"))[:2]]
    (tmp_path / "notes.jpg").write_text("not an image")
    res = cli("explain", str(tiny_run / "bundle"), *images, str(tmp_path / "notes.jpg"), "--out", str(tmp_path / "ex"))
    assert res.returncode == 0, res.stderr[-2000:]
    pngs = sorted((tmp_path / "ex").glob("*_explain.png"))
    assert len(pngs) == 2
    index = list(csv.DictReader(open(tmp_path / "ex" / "explain.csv")))  # a row for every input, the bad one too
    assert [r["path"] for r in index] == images + [str(tmp_path / "notes.jpg")]
    assert [r["status"] for r in index] == ["ok", "ok", "error"] and "not a readable image" in index[2]["error"]
    assert all(Path(r["overlay"]).is_file() for r in index[:2]) and index[2]["overlay"] == ""
    panel = cv2.imread(str(pngs[0]))
    assert panel.shape[1] == 3 * (panel.shape[0] - HEADER)  # input | Grad-CAM | attention side by side


def test_explanation_says_what_predict_says_flags_included(tiny_bundle, synth_dir):
    from leukoscope.data.images import read_rgb

    predictor = Predictor(tiny_bundle)
    path = sorted((synth_dir / "Pre").glob("*.jpg"))[0]
    _, info = explanation_panel(tiny_bundle, read_rgb(path), "gradcam")
    row = predictor.rows([str(path)], predictor.predict_rgbs([read_rgb(path)]))[0]
    assert (info["label"], info["abstain"], info["ood"]) == (row["label"], row["abstain"], row["ood"])
    assert info["confidence"] == pytest.approx(row["confidence"], abs=1e-6)
    blank = np.full((224, 224, 3), 235, np.uint8)  # nothing to classify
    panel, info = explanation_panel(tiny_bundle, blank, "gradcam")
    assert info["ood"] and info["abstain"] and info["ood_reason"] == "no leukocyte found"
    review_ink = (panel[:HEADER, :, 0] == 0) & (panel[:HEADER, :, 1] == 0) & (panel[:HEADER, :, 2] > 150)
    assert review_ink.sum() > 30  # the red review line is drawn above the images


def test_gradcam_highlights_the_leukocyte(tiny_bundle):
    from leukoscope.data.synth import synth_field
    from leukoscope.explain.overlays import attention_map, gradcam_map

    rgb, cells = synth_field("Pro", np.random.default_rng(5), size=64, n_cells=1)
    image = tiny_bundle.pipeline(rgb)
    heat = gradcam_map(tiny_bundle, image, 3)
    assert heat.shape == (64, 64) and 0 <= heat.min() and heat.max() <= 1
    att = attention_map(tiny_bundle, image)
    assert att.shape == (64, 64) and att.max() == pytest.approx(1.0)


def test_an_explanation_at_a_pixel_scale_shows_what_predict_calls_at_it(cell_bundle):
    """Fields of an objective 2.5 x the training one's: explained at their pixel scale, the call and its
    confidence are `predict --pixel-size`'s, not those of the same fields taken as a field of view."""
    from leukoscope.data.synth import synth_field

    scale = 2.5 * 160 / 224  # the cell model's training fields are 160 px
    moved = 0
    for i in range(4):
        rgb, _ = synth_field(("Benign", "Early", "Pre", "Pro")[i], np.random.default_rng([41, i]), size=160, magnification=2.5)
        at_scale = Predictor(cell_bundle, pixel_scale=scale).predict_rgbs([rgb])
        info = explanation_panel(cell_bundle, rgb, "gradcam", pixel_scale=scale)[1]
        assert info["confidence"] == pytest.approx(float(at_scale.confidence[0]), abs=1e-6)
        assert info["cells"] == int(at_scale.units[0])
        moved += abs(info["confidence"] - explanation_panel(cell_bundle, rgb, "gradcam")[1]["confidence"]) > 0.01
    assert moved >= 2  # 4 of 4 measured: the pixel scale reaches the explanation
