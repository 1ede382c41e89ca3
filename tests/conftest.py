"""Shared fixtures: a small synthetic dataset, the real development data (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from leukoscope.data.synth import synth_dataset

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "taleqani-all"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the session's trained model depends on that training run: mark it `trains`."""
    for item in items:
        if "tiny_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.trains)


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
