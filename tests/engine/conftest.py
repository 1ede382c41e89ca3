from pathlib import Path

import pytest

from leukoscope.config import load_config

SMOKE = ["data.synth_per_class=10", "preprocess.size=48", "model.kwargs.input_size=48", "train.max_epochs=2", "eval.bootstrap=50", "data.batch_size=8"]


@pytest.fixture()
def smoke_overrides(tmp_path: Path) -> list[str]:
    return SMOKE + [f"data.cache_dir={tmp_path / 'cache'}"]


@pytest.fixture()
def smoke_config(smoke_overrides):
    return load_config("configs/smoke.yaml", smoke_overrides)


@pytest.fixture()
def config(cell_data, cell_run, cell_overrides, tmp_path):
    """The session's cell run's config on its own splits, with more overrides (fine-tuning tests start from its bundle)."""

    def make(*extra):
        base = [f"data.root={cell_data}", *cell_overrides, f"data.splits={cell_run / 'splits.json'}", f"data.cache_dir={tmp_path / 'cache'}"]
        return load_config("configs/cells.yaml", [*base, *extra])

    return make
