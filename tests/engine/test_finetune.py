"""Fine-tuning from a bundle: train.init_from starts from its weights, and the field pooling that calls the
validation fields better is kept."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from leukoscope.engine.finetune import FITTED, KEPT, better_pool, pool_for_fine_tune, start_from_bundle
from leukoscope.engine.mil import fit_attention_pool
from leukoscope.engine.train import train
from leukoscope.errors import ConfigError
from leukoscope.models import create_model
from leukoscope.models.mil import GatedAttentionPool


@pytest.mark.trains
def test_init_from_loads_the_weights_and_refuses_another_architecture(config, cell_run, cell_bundle):
    cfg = config(f"train.init_from={cell_run / 'bundle'}")
    model = create_model(cfg.model.name, 4, **cfg.model.kwargs)
    start_from_bundle(model, cfg, cell_bundle.classes)
    theirs = cell_bundle.model.state_dict()
    assert all(torch.equal(v, theirs[k]) for k, v in model.state_dict().items())
    with pytest.raises(ConfigError, match="the bundle's classes"):
        start_from_bundle(model, cfg, ["Benign", "Early", "Pre", "T-ALL"])
    wider = config(f"train.init_from={cell_run / 'bundle'}", "model.kwargs.width=0.25")
    with pytest.raises(ConfigError, match=r"the bundle holds vgg19_bn_mhsa, the config asks for vgg19_bn_mhsa \(width 0.125 vs 0.25\)"):
        start_from_bundle(create_model(wider.model.name, 4, **wider.model.kwargs), wider, cell_bundle.classes)


def test_better_pool_takes_the_pool_that_calls_the_fields_and_reports_each_loss():
    rng = np.random.default_rng(0)
    labels = np.arange(40) % 4
    bags = [rng.normal(size=(5, 8)).astype(np.float32) + 3 * np.eye(8, dtype=np.float32)[y] for y in labels]  # a field's class lifts one feature
    fitted = fit_attention_pool(bags, labels, 4, epochs=100)
    torch.manual_seed(0)
    chosen, losses = better_pool({"untrained": GatedAttentionPool(8, 4), "fitted": fitted}, bags, labels)
    assert chosen == "fitted" and set(losses) == {"untrained", "fitted"}
    assert losses["fitted"] < 0.5 * losses["untrained"] and losses["untrained"] > 1.0  # chance is log 4 = 1.39


@pytest.mark.trains
def test_a_fine_tune_on_a_few_fields_keeps_the_starting_bundles_attention_pool(config, cell_run, tmp_path, capsys):
    start = train(config(f"train.init_from={cell_run / 'bundle'}", "cells.aggregate=attention", "train.max_epochs=1"), tmp_path / "start")
    splits = json.loads((cell_run / "splits.json").read_text())
    splits["splits"]["train"] = [p for p in splits["splits"]["train"] if p.startswith("Benign/")][:2]  # a lab reviewed two benign fields
    few = tmp_path / "few.json"
    few.write_text(json.dumps(splits))
    cfg = config(f"train.init_from={start}", "cells.aggregate=attention", "train.max_epochs=1", "train.lr=0.0005", "loss.alpha=null", f"data.splits={few}")
    tuned = train(cfg, tmp_path / "tuned")
    meta = json.loads((tuned / "bundle.json").read_text())
    accepted = meta["abstain"]["validation_accepted"]  # the session's few validation fields cannot vouch for 2 %, and train says so
    assert 0 < accepted < 50 and f"the abstain threshold rests on {accepted} validation field(s)" in capsys.readouterr().err
    losses = meta["calibration"]["attention_pool"]["validation_log_loss"]
    assert meta["calibration"]["attention_pool"]["chosen"] == KEPT and losses[KEPT] < losses[FITTED]
    kept, before = load_file(tuned / "mil.safetensors"), load_file(start / "mil.safetensors")
    assert kept.keys() == before.keys() and all(torch.equal(kept[k], before[k]) for k in kept)
    # with too few validation fields to tell the pools apart, the start's is kept untried; from scratch there is no choice
    fitted = GatedAttentionPool(kept["value.weight"].shape[1], 4)
    bags = [np.ones((3, fitted.in_features), np.float32)] * 5
    pool, why = pool_for_fine_tune(cfg, fitted, bags, np.zeros(5, int))
    assert pool is not fitted and all(torch.equal(v, before[k]) for k, v in pool.state_dict().items())
    assert why == {"chosen": KEPT, "why": "5 validation fields, too few to choose by"}
    assert pool_for_fine_tune(config(), fitted, bags, np.zeros(5, int)) == (fitted, None)
