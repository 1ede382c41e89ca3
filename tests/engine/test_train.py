import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

from leukoscope.config import config_from_dict, load_config
from leukoscope.engine.precision import training_precision
from leukoscope.engine.train import EpochLines, chance_warning, compute_threads, train, training_pixel_scale
from leukoscope.preprocess.augment import RandomGaussianBlur
from leukoscope.scoring.bundle import BundleError, load_bundle
from leukoscope.scoring.ood import IMAGE_STATS
from leukoscope.scoring.runner import run_model

pytestmark = pytest.mark.trains


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "leukoscope.cli", *args], capture_output=True, text=True, **kw)


def test_smoke_train_writes_a_reproducible_run_and_bundle(tmp_path, smoke_overrides):
    smoke_config = load_config("configs/smoke.yaml", [*smoke_overrides, "train.precision=auto"])
    bundle_dir = train(smoke_config, tmp_path / "run")
    run = tmp_path / "run"
    for name in ("config.yaml", "splits.json", "data.json", "environment.json", "metrics.json", "checkpoints/best.ckpt", "checkpoints/last.ckpt", "logs/metrics.csv"):
        assert (run / name).is_file(), name
    saved = config_from_dict(yaml.safe_load((run / "config.yaml").read_text()))
    assert saved == smoke_config  # the run can be reproduced from its folder alone
    data = json.loads((run / "data.json").read_text())
    assert len(data["fingerprint"]) == 16 and set(data["counts"]) == {"train", "val", "test"}
    environment = json.loads((run / "environment.json").read_text())
    assert environment["git_commit"]
    # the config keeps `auto`; the machine's choice is recorded beside it and in the bundle
    chosen = training_precision("auto", smoke_config.train.accelerator)
    assert environment["precision"] == {"asked": "auto", "used": chosen.used, "why": chosen.why}

    bundle = load_bundle(bundle_dir)
    meta = bundle.meta
    for key in ("model", "classes", "preprocess", "input_size", "normalization", "calibration", "ood", "data", "metrics"):
        assert key in meta, key
    assert meta["classes"] == ["Benign", "Early", "Pre", "Pro"] and meta["input_size"] == 48
    assert bundle.temperature > 0 and bundle.ood is not None and np.isfinite(bundle.ood.threshold)
    # the bundle reproduces the best checkpoint's outputs
    state = torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    from leukoscope.models import create_model

    ref = create_model(meta["model"]["name"], 4, **meta["model"]["kwargs"])
    ref.load_state_dict({k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")})
    images = np.random.default_rng(0).integers(0, 255, (3, 48, 48, 3), dtype=np.uint8)
    a, _ = run_model(ref, images, bundle.mean, bundle.std)
    b, _ = run_model(bundle.model, images, bundle.mean, bundle.std)
    assert np.allclose(a, b, atol=1e-5)
    assert "test" in meta["metrics"] and 0 <= meta["metrics"]["test"]["accuracy"] <= 1
    assert meta["training"]["precision"] == chosen.used
    assert bundle.image_ood is not None and bundle.image_ood.names == IMAGE_STATS
    # the screening cut is chosen on validation for new fields (conformal), reaches its sensitivity there, and is applied to the test split
    screening = meta["screening"]
    assert screening["rule"] == "conformal"
    assert screening["target_sensitivity"] == smoke_config.eval.target_sensitivity and bundle.screening_threshold == screening["p_benign_below"]
    assert screening["validation_malignant"] == int(np.sum(np.array(meta["metrics"]["val"]["confusion_matrix"])[1:]))
    assert meta["metrics"]["val"]["screening"]["sensitivity"] >= screening["target_sensitivity"]
    test_metrics = meta["metrics"]["test"]
    assert test_metrics["screening"]["sensitivity"] >= test_metrics["benign_vs_malignant"]["sensitivity"]

    stored = json.loads((bundle_dir / "bundle.json").read_text())
    stored["image_ood"]["stats"] = ["hue mean"]  # a statistic this version cannot compute
    (bundle_dir / "bundle.json").write_text(json.dumps(stored))
    with pytest.raises(BundleError, match="bundle.json: unknown image statistics"):
        load_bundle(bundle_dir)


@pytest.mark.parametrize(
    "override,needle",
    [
        ("train.max_epoch=3", "train.max_epoch"),
        ("train.max_epochs=three", "train.max_epochs"),
        ("loss.name=hinge", "loss.name"),
        ("data.root=/no/such/folder", "/no/such/folder"),
        ("model.kwargs={depth: 3}", "depth"),
        ("model.kwargs.head_activation=tanh", "head_activation"),
        ("eval.target_sensitivity=1.5", "eval.target_sensitivity"),
        ("train.consistency=-1", "train.consistency"),
        ("cells.acquisition_copies=-1", "cells.acquisition_copies"),
        ("cells.outline_jitter=-1", "cells.outline_jitter"),
        ("cells.min_relative_stain=50", "cells.min_relative_stain"),  # a share, not a percentage
        ("cells.pool_subsample=50", "cells.pool_subsample"),
        ("cells.stain_fit=discs", "cells.suppress=disc"),  # the discs are what disc crops show
        ("eval.min_leukocytes=3", "eval.min_leukocytes"),  # smoke.yaml's model sees whole fields, not leukocytes
        ("augment.blur_warmup_epochs=2", "augment.blur_warmup_epochs"),  # and no blur to warm up
        ("eval.focus_quantile=1.5", "eval.focus_quantile"),
        ("loss.malignant_cell_drop=1", "loss.malignant_cell_drop"),
        ("augment.frame_cut=0.3", "augment.frame_cut"),  # smoke.yaml's whole fields have no cell to cut
        ("augment.frame_cut_keep=[0.9, 0.4]", "augment.frame_cut_keep"),
    ],
)
def test_bad_config_fails_before_training_in_one_line(cli, tmp_path, override, needle):
    res = cli("train", "--config", "configs/smoke.yaml", "--out", str(tmp_path / "run"), override, f"data.cache_dir={tmp_path}")
    assert res.returncode == 2, res.stderr[-2000:]
    lines = [line for line in res.stderr.strip().splitlines() if line.strip()]
    assert lines[-1].startswith("error:") and needle in lines[-1] and "Traceback" not in res.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_unknown_key_in_yaml_file(cli, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("data:\n  rooot: x\n")
    res = cli("train", "--config", str(cfg), "--out", str(tmp_path / "run"))
    assert res.returncode == 2 and "data.rooot" in res.stderr


def test_kill_and_resume(tmp_path, smoke_overrides):
    args = ["train", "--config", "configs/smoke.yaml", "--out", str(tmp_path / "run"), *smoke_overrides, "train.max_epochs=40"]
    proc = subprocess.Popen([sys.executable, "-m", "leukoscope.cli", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 120
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)
    assert proc.poll() is None, "training ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "run" / "bundle").exists()
    epoch_at_kill = torch.load(last, map_location="cpu", weights_only=True)["epoch"]
    res = _cli(*args, "--resume")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "no checkpoint" not in res.stdout
    assert "litlogger" not in res.stderr  # no advertising on a lab's console
    # a log, not a terminal: whole lines, one per epoch, and no deprecation noise from Lightning
    assert "\r" not in res.stderr and "LeafSpec" not in res.stderr
    assert "epoch 40/40: train_loss " in res.stderr and "val_f1 " in res.stderr
    final = torch.load(last, map_location="cpu", weights_only=True)
    assert final["epoch"] >= epoch_at_kill and final["epoch"] == 39
    assert not list((tmp_path / "run" / "checkpoints").glob(".*.tmp"))
    torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    assert load_bundle(tmp_path / "run" / "bundle").meta["metrics"]


def test_ddp_two_cpu_processes(tmp_path, smoke_overrides):
    res = _cli(
        "train", "--config", "configs/smoke.yaml", "--out", str(tmp_path / "run"), *smoke_overrides,
        "train.accelerator=cpu", "train.devices=2", "train.strategy=ddp", "train.num_threads=1",
        timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert load_bundle(tmp_path / "run" / "bundle").meta["metrics"]["test"]["n"] > 0


def _logged(run: Path, column: str) -> list[tuple[int, float]]:
    """(epoch, value) of each row of the run's metrics.csv that logged `column`."""
    with open(run / "logs" / "metrics.csv") as f:
        return [(int(row["epoch"]), float(row[column])) for row in csv.DictReader(f) if row.get(column)]


def _blur_strength_as_loaders_start(monkeypatch) -> list[float]:
    """The blur strength a training loader's transform holds each time the loader starts an epoch: its workers
    begin drawing crops then."""
    seen: list[float] = []
    start = torch.utils.data.DataLoader.__iter__

    def blurs(transform) -> list[RandomGaussianBlur]:
        inner = [op for t in getattr(transform, "transforms", []) for op in blurs(t)]
        return [transform, *inner] if isinstance(transform, RandomGaussianBlur) else inner

    def recording(loader):
        seen.extend(float(op.strength) for op in blurs(getattr(loader.dataset, "transform", None)))
        return start(loader)

    monkeypatch.setattr(torch.utils.data.DataLoader, "__iter__", recording)
    return seen


def test_the_blur_comes_in_over_the_warmup_epochs_with_the_data_on_a_worker(tmp_path, smoke_overrides, monkeypatch):
    overrides = [*smoke_overrides, "train.max_epochs=3", "augment.blur=0.6", "augment.blur_warmup_epochs=2", "data.num_workers=1"]
    threads = torch.get_num_threads()
    strengths = _blur_strength_as_loaders_start(monkeypatch)
    train(load_config("configs/smoke.yaml", overrides), tmp_path / "run")
    assert _logged(tmp_path / "run", "blur_probability") == [(0, 0.0), (1, pytest.approx(0.3)), (2, pytest.approx(0.6))]
    assert strengths == [0.0, 0.5, 1.0]  # set before each epoch's crops are drawn, the first epoch's too
    environment = json.loads((tmp_path / "run" / "environment.json").read_text())
    assert environment["data_workers"] == 1 and environment["compute_threads"] == max(1, len(os.sched_getaffinity(0)) - 1)
    assert torch.get_num_threads() == threads  # the scoring after training, and whatever runs next, has the cores back


def test_a_resumed_run_draws_its_first_crops_at_its_epochs_blur_strength(tmp_path, smoke_overrides, monkeypatch):
    overrides = [*smoke_overrides, "augment.blur=0.6", "augment.blur_warmup_epochs=4"]
    train(load_config("configs/smoke.yaml", [*overrides, "train.max_epochs=2"]), tmp_path / "run")
    strengths = _blur_strength_as_loaders_start(monkeypatch)
    train(load_config("configs/smoke.yaml", [*overrides, "train.max_epochs=3"]), tmp_path / "run", resume=True)
    assert strengths == [0.5]  # epochs 0 and 1 done: the third of four warm-up epochs


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ([], None),  # no workers: torch's default
        (["data.num_workers=1"], max(1, len(os.sched_getaffinity(0)) - 1)),
        ([f"data.num_workers={len(os.sched_getaffinity(0)) + 3}"], 1),
        (["data.num_workers=1", "train.num_threads=3"], 3),  # asked for
        (["data.num_workers=1", "train.accelerator=gpu"], None),  # the model computes on the GPU
    ],
)
def test_the_model_computes_on_the_cores_the_data_workers_leave(overrides, expected):
    assert compute_threads(load_config("configs/smoke.yaml", overrides)) == expected


def test_the_share_of_malignant_crops_left_out_rises_over_its_epochs(tmp_path, smoke_overrides):
    overrides = [*smoke_overrides, "train.max_epochs=3", "loss.malignant_cell_drop=0.4", "loss.malignant_cell_drop_epochs=2"]
    train(load_config("configs/smoke.yaml", overrides), tmp_path / "run")
    assert _logged(tmp_path / "run", "malignant_cell_drop") == [(0, 0.0), (1, pytest.approx(0.2)), (2, pytest.approx(0.4))]
    assert load_bundle(tmp_path / "run" / "bundle").meta["metrics"]["test"]["n"] > 0


def test_a_run_that_cannot_learn_says_so_and_one_that_learnt_does_not(tmp_path, smoke_overrides, capfd, cell_run):
    """A run whose weights never move still writes a bundle that loads and predicts: it must say it did not learn."""
    train(load_config("configs/smoke.yaml", [*smoke_overrides, "train.lr=0", "train.max_epochs=1"]), tmp_path / "run")
    assert "cannot be told from 25 % by chance" in capfd.readouterr().err
    learnt = json.loads((cell_run / "metrics.json").read_text())["val"]
    assert chance_warning(learnt, 4) is None  # the session's cell model, which has learnt (its own test)


def test_a_consistency_run_trains_and_logs_how_far_its_two_views_disagree(tmp_path, smoke_overrides):
    cfg = load_config("configs/smoke.yaml", [*smoke_overrides, "train.max_epochs=2", "train.consistency=2"])
    train(cfg, tmp_path / "run")
    disagreement = [value for _, value in _logged(tmp_path / "run", "train_consistency")]
    assert len(disagreement) == 2 and all(0 < d < math.log(2) for d in disagreement), disagreement
    assert load_bundle(tmp_path / "run" / "bundle").meta["metrics"]["test"]["n"] > 0


def test_a_bundle_set_on_flips_and_rotations_predicts_with_them(cell_run, case_fields, tmp_path):
    """eval.tta: what the bundle's fits read (the training crops' OOD statistics, validation's temperature and thresholds)
    is the mean over 8 flips and rotations, and the bundle predicts so unless asked not to (`--no-tta`)."""
    from leukoscope.engine.ensemble import bundle_run_data
    from leukoscope.engine.train import finalize, record_run
    from leukoscope.inference.predictor import Predictor
    from leukoscope.scoring.calibration import fit_temperature

    plain = load_bundle(cell_run / "bundle")
    cfg, dm = bundle_run_data(plain, None, ["eval.tta=true"])
    out = tmp_path / "tta"
    tta = load_bundle(finalize(cfg, plain.model, dm, out, record_run(out, cfg, dm), {"precision": "32-true"}))
    assert tta.tta and not plain.tta
    val = dm.datasets["val"]
    labels = np.asarray(val.labels)
    seen_so, _ = run_model(tta.model, val.images, tta.mean, tta.std, tta=True)
    one_view, _ = run_model(tta.model, val.images, tta.mean, tta.std)
    assert tta.temperature == pytest.approx(fit_temperature(seen_so, labels), rel=1e-6)
    assert abs(fit_temperature(one_view, labels) - tta.temperature) > 1e-3
    train_images, train_labels, _ = dm.train_originals
    train_labels = np.asarray(train_labels)
    for views, matches in ((True, True), (False, False)):
        _, feats = run_model(tta.model, train_images, tta.mean, tta.std, features=True, tta=views)
        class_means = np.stack([feats[train_labels == c].mean(0) for c in np.unique(train_labels)])
        assert np.allclose(tta.ood.means, class_means, atol=1e-4) == matches

    fields = [str(p) for p in case_fields[:4]]

    def probabilities(predictor: Predictor) -> np.ndarray:
        rows, failures = predictor.predict_paths(fields, progress=False)
        assert not failures
        return np.array([[r[f"p_{c}"] for c in tta.classes] for r in rows], float)

    default, flipped, single = probabilities(Predictor(tta)), probabilities(Predictor(tta, tta=True)), probabilities(Predictor(tta, tta=False))
    np.testing.assert_allclose(default, flipped, atol=1e-6)
    assert np.abs(default - single).max() > 1e-3
    res = _cli("predict", str(out / "bundle"), *fields, "--no-tta", "--out", str(tmp_path / "single.csv"))
    assert res.returncode == 0, res.stderr[-2000:]
    assert "set on the mean of 8 flips and rotations of each unit; read in one orientation" in res.stderr
    rows = list(csv.DictReader(open(tmp_path / "single.csv")))
    np.testing.assert_allclose([[float(r[f"p_{c}"]) for c in tta.classes] for r in rows], single, atol=1e-4)


def test_a_conformal_screening_cut_lies_above_as_many_malignant_validation_fields_as_its_promise_needs(cell_run, tmp_path):
    """eval.screening_cut: the `reached` cut lies above ceil(t·n) of validation's n malignant fields, the `conformal`
    one above ceil(t·(n+1)) of them, so that a new malignant field falls below it with probability >= t."""
    from leukoscope.engine.ensemble import bundle_run_data
    from leukoscope.engine.train import finalize, record_run

    plain = load_bundle(cell_run / "bundle")
    cuts = {}
    for rule in ("reached", "conformal"):
        cfg, dm = bundle_run_data(plain, None, ["eval.target_sensitivity=0.9", f"eval.screening_cut={rule}"])
        out = tmp_path / rule
        bundle = load_bundle(finalize(cfg, plain.model, dm, out, record_run(out, cfg, dm), {"precision": "32-true"}))
        screening, n = bundle.meta["screening"], bundle.meta["screening"]["validation_malignant"]
        below = round(bundle.meta["metrics"]["val"]["screening"]["sensitivity"] * n)
        assert screening["rule"] == rule and below == math.ceil(0.9 * (n + (rule == "conformal")) - 1e-9), (n, below)
        cuts[rule] = bundle.screening_threshold
    assert cuts["conformal"] > cuts["reached"]


def test_each_epoch_line_says_how_long_the_epochs_left_will_take(monkeypatch, capsys):
    """At the median pace of the epochs after the first, which also starts the loader workers."""
    clock = iter([0.0, 50.0, 50.0, 80.0, 80.0, 112.0, 112.0, 140.0])  # epochs of 50, 30, 32 and 28 s
    monkeypatch.setattr("leukoscope.engine.train.time", SimpleNamespace(perf_counter=lambda: next(clock)))
    lines = EpochLines()
    trainer = SimpleNamespace(callback_metrics={"val_f1": torch.tensor(0.5)}, max_epochs=4, current_epoch=0)
    for epoch in range(4):
        trainer.current_epoch = epoch
        lines.on_train_epoch_start(trainer, None)
        lines.on_train_epoch_end(trainer, None)
    printed = capsys.readouterr().err.splitlines()
    assert printed[0] == "epoch 1/4: val_f1 0.5000 (50.0 s; about 2.5 min of epochs left)"  # 3 x 50 s: the first is all there is
    assert printed[1].endswith("(30.0 s; about 1.0 min of epochs left)")  # 2 x 30 s
    assert printed[2].endswith("(32.0 s; about 0.5 min of epochs left)")  # 1 x 31 s, the median of 30 and 32
    assert printed[3] == "epoch 4/4: val_f1 0.5000 (28.0 s)"


def test_the_training_fields_red_cells_are_measured_once_for_a_set_of_fields(tmp_path, monkeypatch):
    """Kept in the cache under the fields' paths and contents: a second run on the same fields reads it back;
    a field whose contents changed is measured again."""
    import cv2

    import leukoscope.cells.ruler as ruler
    from leukoscope.data.synth import RED_CELL_DIAMETER, synth_field

    fields = []
    for i, label in enumerate(["Benign", "Early", "Pre", "Pro"] * 2):
        fields.append(str(tmp_path / f"{i}.png"))
        cv2.imwrite(fields[-1], cv2.cvtColor(synth_field(label, np.random.default_rng([8, i]), size=224, magnification=1.5)[0], cv2.COLOR_RGB2BGR))
    digests = {path: f"sha-{i}" for i, path in enumerate(fields)}
    measured = training_pixel_scale(fields, 1_000_000, digests, tmp_path / "cache")
    assert measured is not None and measured["measured"] >= 6 and measured["red_cell_px"] == pytest.approx(1.5 * RED_CELL_DIAMETER, rel=0.08)
    calls = []
    real = ruler.training_scale
    monkeypatch.setattr(ruler, "training_scale", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert training_pixel_scale(list(reversed(fields)), 1_000_000, digests, tmp_path / "cache") == measured and not calls
    assert training_pixel_scale(fields, 1_000_000, {**digests, fields[0]: "another"}, tmp_path / "cache") == measured and len(calls) == 1
    assert training_pixel_scale(fields, 500_000, digests, tmp_path / "cache") is not None and len(calls) == 2  # another reading of the fields
    for kept in (tmp_path / "cache" / "training-scale").glob("*.json"):
        kept.write_text("{")  # damaged: measured again, not a crash
    assert training_pixel_scale(fields, 1_000_000, digests, tmp_path / "cache") == measured and len(calls) == 3
