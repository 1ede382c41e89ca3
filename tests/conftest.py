"""Shared fixtures: a small synthetic dataset, the real development data (skipped when absent)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from leukoscope.data.synth import SYNTH_CLASSES, synth_dataset, synth_field

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "taleqani-all"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses one of the session's trained models depends on that training run: mark it `trains`."""
    for item in items:
        if {"tiny_run", "cell_run"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.trains)


@dataclass(frozen=True)
class CliResult:
    """What a `leukoscope` command returned and printed, as `subprocess.run` gives it."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def cli() -> Callable[..., CliResult]:
    """`leukoscope ARGS` run in this process, through the console script's `main`. A subprocess spends 4-12 s
    importing PyTorch and Lightning; the tests run some fifty commands. What needs a process of its own (a
    kill, DDP, the entry point itself) keeps one."""
    from leukoscope.cli import main

    def run(*args: str) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        return CliResult(code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 synthetic 96-px fields per class; read-only by convention (copy before changing)."""
    return synth_dataset(tmp_path_factory.mktemp("synth"), per_class=12, size=96, seed=1)


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not (REAL_DATA / "Original").is_dir():
        pytest.skip(f"real data not available at {REAL_DATA}")
    return REAL_DATA


TINY = [
    "data.synth_per_class=24",
    "preprocess.size=64",
    "model.kwargs.input_size=64",
    "train.max_epochs=10",
    "eval.bootstrap=50",
    "data.batch_size=16",
]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A smoke model trained once for the session on synthetic data; returns its run folder."""
    from leukoscope.config import load_config
    from leukoscope.engine.train import train

    root = tmp_path_factory.mktemp("tiny-run")
    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml", TINY + [f"data.cache_dir={root / 'cache'}"])
    train(cfg, root / "run")
    return root / "run"


@pytest.fixture(scope="session")
def tiny_bundle(tiny_run: Path):
    from leukoscope.scoring.bundle import load_bundle

    return load_bundle(tiny_run / "bundle")


CELL_RUN = [
    "data.test_per_class=null", "data.test_fraction=0.25", "data.val_fraction=0.2", "data.batch_size=32",
    "cells.crop_size=32", "preprocess.size=32", "model.kwargs.input_size=32", "train.max_epochs=15", "train.lr=0.005", "eval.bootstrap=20",
    "cells.aggregate=mean_log_prob",  # so a field's call can be checked against its cells; attention pooling has its own tests
    "augment.blur=0", "augment.blur_warmup_epochs=0",  # the blur slows the first epochs; it has its own tests
    "train.precision=32-true",  # the tests' margins were measured in fp32; cells.yaml's auto takes bf16 on a CPU that has it
    "model.name=vgg19_bn_mhsa",  # and with the VGG19 trunk, cells.yaml's before its VGG11
    "data.num_workers=0",  # a spawned worker costs an import of PyTorch per run; the worker has its own tests
    # and without cells.yaml's consistency term and camera colours: two views a step on half the batches, measured
    # on the development data; the term and the augmentation have their own tests
    "train.consistency=0", "train.limit_train_batches=1.0", "augment.camera_colour=0",
    "eval.tta=false",  # and each cell read in one orientation, as the margins were measured: eight have their own test
]  # fmt: skip


@pytest.fixture(scope="session")
def cell_overrides() -> list[str]:
    """The settings `cell_run` trains with, for tests that train beside it on the same data."""
    return list(CELL_RUN)


@pytest.fixture(scope="session")
def cell_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 synthetic 160-px fields per class, several leukocytes each; read-only by convention. With 16,
    or 6 epochs, the cell model stayed near chance, and the tests built on it tested an untrained model."""
    return synth_dataset(tmp_path_factory.mktemp("cell-data"), per_class=40, size=160, seed=8)


@pytest.fixture(scope="session")
def cell_run(tmp_path_factory: pytest.TempPathFactory, cell_data: Path) -> Path:
    """A small cell-level model (configs/cells.yaml at 32 px) trained once for the session; its run folder."""
    from leukoscope.config import load_config
    from leukoscope.engine.train import train

    root = tmp_path_factory.mktemp("cell-run")
    cfg = load_config("configs/cells.yaml", [f"data.root={cell_data}", *CELL_RUN, f"data.cache_dir={root / 'cache'}"])
    train(cfg, root / "run")
    return root / "run"


@pytest.fixture(scope="session")
def cell_bundle(cell_run: Path):
    from leukoscope.scoring.bundle import load_bundle

    return load_bundle(cell_run / "bundle")


@pytest.fixture(scope="session")
def case_fields(cell_data: Path) -> list[Path]:
    """Eight fields of one synthetic 'patient': the last two of each class."""
    return [p for c in ("Benign", "Early", "Pre", "Pro") for p in sorted((cell_data / c).glob("*.jpg"))[-2:]]


@pytest.fixture(scope="session")
def magnified_pngs() -> Callable[..., list[tuple[str, bytes]]]:
    """(name, PNG bytes) of `n` synthetic 160 px fields seen through an objective `magnification` x the training one's."""

    def make(magnification: float, n: int = 8, seed: int = 41) -> list[tuple[str, bytes]]:
        fields = [synth_field(SYNTH_CLASSES[i % 4], np.random.default_rng([seed, i]), size=160, magnification=magnification)[0] for i in range(n)]
        return [(f"field-{i}.png", cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()) for i, rgb in enumerate(fields)]

    return make
