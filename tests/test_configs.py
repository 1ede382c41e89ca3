from pathlib import Path

import pytest

import leukoscope
from leukoscope.config import load_config
from leukoscope.models import create_model

BUILTIN = sorted((Path(leukoscope.__file__).parent / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", BUILTIN, ids=[p.stem for p in BUILTIN])
def test_every_builtin_config_loads_and_builds_its_model(path):
    cfg = load_config(path.stem, ["data.root="])
    assert cfg.name == path.stem
    model = create_model(cfg.model.name, 4, **cfg.model.kwargs)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_paper_cpu_protocol_swaps_only_the_model_for_the_baseline():
    vgg = load_config("paper-cpu", ["data.root="]).to_dict()
    resnet = load_config("paper-cpu", ["data.root=", "model.name=resnet101", "model.kwargs={}"]).to_dict()
    assert resnet["model"]["name"] == "resnet101"
    assert {k: v for k, v in vgg.items() if k not in ("model",)} == {k: v for k, v in resnet.items() if k not in ("model",)}
