import csv
import json

import cv2
import numpy as np
import pytest

from leukoscope.inference.predictor import Predictor


def test_predict_cli_files_folders_globs_and_bad_files(cli, tmp_path, tiny_run, synth_dir):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really")
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((64, 64, 3), 255, np.uint8))
    out = tmp_path / "preds.csv"
    res = cli("predict", str(tiny_run / "bundle"), str(synth_dir / "Pro"), str(synth_dir / "Benign" / "*.jpg"), str(bad), str(blank), "--out", str(out))
    assert res.returncode == 0, res.stderr[-2000:]
    assert "broken.jpg" in res.stderr
    assert "out of distribution: 1 no leukocyte found" in res.stdout
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 26 and rows[-1]["ood_reason"] == "no leukocyte found"
    assert list(rows[0])[:11] == ["path", "status", "error", "label", "confidence", "abstain", "abstain_reason", "ood", "ood_score", "ood_reason", "screen"]
    assert all(bool(r["abstain_reason"]) == (r["abstain"] == "True") for r in rows if r["status"] == "ok")
    for r in rows[:-2]:  # the screening call is the plain call, or malignant where p(Benign) is below the bundle's cut
        cut = json.loads((tiny_run / "bundle" / "bundle.json").read_text())["screening"]["p_benign_below"]
        assert r["screen"] == ("benign" if r["label"] == "Benign" and float(r["p_Benign"]) >= cut else "malignant")
    assert {"p_Benign", "p_Early", "p_Pre", "p_Pro"} <= set(rows[0])
    broken = rows[-2]
    assert broken["path"].endswith("broken.jpg") and broken["status"] == "error" and broken["error"] and broken["label"] == ""
    for r in rows[:-2] + rows[-1:]:
        assert r["status"] == "ok" and r["error"] == ""
    for r in rows[:-2] + rows[-1:]:
        probs = [float(r[f"p_{c}"]) for c in ("Benign", "Early", "Pre", "Pro")]
        assert abs(sum(probs) - 1) < 1e-4 and float(r["confidence"]) == pytest.approx(max(probs), abs=1e-6)
    res = cli("predict", str(tiny_run / "bundle"), str(synth_dir / "Pro" / "synth-pro-0000.jpg"), "--out", str(tmp_path / "p.json"))
    assert res.returncode == 0 and json.loads((tmp_path / "p.json").read_text())[0]["path"].endswith("synth-pro-0000.jpg")
    res = cli("predict", str(tiny_run / "bundle"), str(tmp_path / "nope"), "--out", str(tmp_path / "x.csv"))
    assert res.returncode == 2 and "no such file" in res.stderr and not (tmp_path / "x.csv").exists()
    res = cli("predict", str(tiny_run / "bundle"), str(synth_dir / "Pro"), "--out", str(tmp_path / "preds.txt"))
    assert res.returncode == 2 and "preds.txt: unknown output format '.txt'" in res.stderr and not (tmp_path / "preds.txt").exists()


def test_predict_matches_bundle_preprocessing(tiny_bundle, synth_dir):
    path = str(next((synth_dir / "Early").glob("*.jpg")))
    predictor = Predictor(tiny_bundle)
    rows, _ = predictor.predict_paths([path], progress=False)
    direct = predictor.predict_arrays(tiny_bundle.pipeline.load(path)[None])
    assert rows[0]["confidence"] == pytest.approx(float(direct.confidence[0]), abs=1e-6)


def test_ood_and_abstain_fire_on_unlike_inputs_and_stay_quiet_in_distribution(tiny_bundle, synth_dir):
    from leukoscope.data.synth import synth_field

    predictor = Predictor(tiny_bundle)
    size = tiny_bundle.input_size
    rng = np.random.default_rng(0)
    blank = np.full((size, size, 3), 255, np.uint8)
    noise = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    black = np.zeros((size, size, 3), np.uint8)
    no_cells = synth_field("Pre", np.random.default_rng(5), size=size, n_cells=0)[0]  # a smear without leukocytes
    weird = predictor.predict_rgbs([blank, noise, black, no_cells])
    assert weird.ood.all() and weird.abstain.all()
    assert "no leukocyte found" in weird.ood_reasons[0] and weird.ood_reasons[3] == "no leukocyte found" and all(weird.ood_reasons)
    normal = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(synth_dir.rglob("*.jpg"))[:24]]
    normal += [synth_field("Pre", np.random.default_rng([77, i]), size=96)[0] for i in range(8)]
    pred = predictor.predict_rgbs(normal)
    assert pred.ood.mean() <= 0.1
    assert [bool(r) for r in pred.ood_reasons] == pred.ood.tolist()  # a reason exactly where there is a flag


def test_ood_reason_names_the_statistics_out_of_range(tiny_bundle, synth_dir):
    import dataclasses

    from leukoscope.scoring.ood import ImageStatsOOD

    fields = np.stack([tiny_bundle.pipeline.load(p) for p in sorted(synth_dir.rglob("*.jpg"))[:6]])
    fitted = ImageStatsOOD.fit(fields, quantile=0.0)
    low, high = fitted.low.copy(), fitted.high.copy()
    low[1] = high[1] = -1.0  # no field has a negative green mean
    bundle = dataclasses.replace(tiny_bundle, image_ood=ImageStatsOOD(low, high, margin=10.0), ood=None)
    rows = Predictor(bundle).rows([f"f{i}" for i in range(len(fields))], Predictor(bundle).predict_arrays(fields))
    assert all(r["ood"] and r["ood_reason"] == "image statistics outside the training range (G mean)" for r in rows)
    strict = dataclasses.replace(tiny_bundle, image_ood=None, ood=dataclasses.replace(tiny_bundle.ood, threshold=-1.0))
    reasons = Predictor(strict).predict_arrays(fields).ood_reasons
    assert all(r.startswith("features far from the training classes (score ") and r.endswith("> -1)") for r in reasons)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_predict_paths_in_parallel_batches_keeps_order_and_equals_one_stream(tmp_path, tiny_bundle, synth_dir, backend):
    import torch

    files = [str(p) for p in sorted(synth_dir.rglob("*.jpg"))[:7]]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    paths = files[:3] + [str(broken)] + files[3:]
    threads = torch.get_num_threads()
    predictor = Predictor(tiny_bundle, backend=backend, batch_size=2)  # 4 batches over two workers
    rows, failures = predictor.predict_paths(paths, progress=False)
    assert [r["path"] for r in rows] == files
    assert [f["path"] for f in failures] == [str(broken)]
    assert torch.get_num_threads() == threads
    direct = predictor.predict_arrays(np.stack([tiny_bundle.pipeline.load(p) for p in files]))
    np.testing.assert_allclose([r["confidence"] for r in rows], direct.confidence, atol=1e-5)


def _bad_inputs(folder):
    """One file of every broken kind a lab's folder can hold, by name."""
    folder.mkdir()
    (folder / "zero.jpg").write_bytes(b"")
    good = cv2.imencode(".jpg", np.full((64, 64, 3), 200, np.uint8))[1].tobytes()
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (folder / "text.jpg").write_text("patient notes, not an image\n")
    (folder / "document.jpg").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n")
    png = cv2.imencode(".png", np.full((64, 64, 3), 200, np.uint8))[1].tobytes()
    (folder / "corrupt.png").write_bytes(png[:60] + bytes(64) + png[124:])
    (folder / "broken-link.jpg").symlink_to(folder / "no-such-target.jpg")
    (folder / "loop").symlink_to(folder)  # a folder that contains itself: must not be walked forever
    from PIL import Image

    Image.new("L", (9000, 9000)).save(folder / "bomb.png")  # 81 M pixels in a few kB: over the 50 M limit
    return {"zero.jpg": "empty", "truncated.jpg": "", "text.jpg": "not a readable image", "document.jpg": "not a readable image",
            "corrupt.png": "", "broken-link.jpg": "broken symbolic link", "bomb.png": "too large"}


def test_every_input_gets_a_row_good_and_broken_alike(cli, tmp_path, tiny_run, synth_dir):
    bad = _bad_inputs(tmp_path / "in")
    goods = sorted((synth_dir / "Pre").glob("*.jpg"))[:3]
    for g in goods:
        (tmp_path / "in" / g.name).write_bytes(g.read_bytes())
    for out in (tmp_path / "preds.csv", tmp_path / "preds.json"):
        res = cli("predict", str(tiny_run / "bundle"), str(tmp_path / "in"), "--out", str(out))
        assert res.returncode == 0, res.stderr[-2000:]
        assert "Traceback" not in res.stderr and "\r" not in res.stderr  # a log gets whole lines
        rows = list(csv.DictReader(open(out))) if out.suffix == ".csv" else json.loads(out.read_text())
        by_name = {r["path"].rsplit("/", 1)[-1]: r for r in rows}
        assert len(rows) == len(by_name) == len(bad) + len(goods), sorted(by_name)
        for name, reason in bad.items():
            assert by_name[name]["status"] == "error" and reason in by_name[name]["error"], (name, by_name[name])
            assert by_name[name].get("label", "") == ""
        for g in goods:
            assert by_name[g.name]["status"] == "ok" and by_name[g.name]["label"] in ("Benign", "Early", "Pre", "Pro")


def test_a_cell_bundle_finds_its_cells_with_the_outline_rule_it_was_trained_with(cell_bundle, case_fields):
    import copy
    import dataclasses

    from leukoscope.cells.detect import DetectionConfig, detect_leukocytes
    from leukoscope.data.images import read_rgb

    def trained_with(outline: str) -> Predictor:
        meta = copy.deepcopy(cell_bundle.meta)
        meta["config"]["cells"]["outline"] = outline
        return Predictor(dataclasses.replace(cell_bundle, meta=meta))

    plain, guided = trained_with("stain score"), trained_with("lightness guided")
    redrawn = 0
    for path in case_fields:
        rgb = read_rgb(path)
        labels = plain.cell_units(rgb)[1].labels
        np.testing.assert_array_equal(labels, detect_leukocytes(rgb, DetectionConfig(outline="stain score"))[1])
        guided_labels = guided.cell_units(rgb)[1].labels
        np.testing.assert_array_equal(guided_labels, detect_leukocytes(rgb, DetectionConfig(outline="lightness guided"))[1])
        redrawn += not np.array_equal(labels, guided_labels)
    assert redrawn > 0
