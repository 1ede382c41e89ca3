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
