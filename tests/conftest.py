"""Shared fixtures: a small synthetic dataset, the real development data (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from leukoscope.data.synth import synth_dataset

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "taleqani-all"


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 synthetic 96-px fields per class; read-only by convention (copy before changing)."""
    return synth_dataset(tmp_path_factory.mktemp("synth"), per_class=12, size=96, seed=1)


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not (REAL_DATA / "Original").is_dir():
        pytest.skip(f"real data not available at {REAL_DATA}")
    return REAL_DATA
