"""Fine-tuning from a bundle: start from its weights, and keep its field pooling where this run's fields cannot
re-learn it.

A laboratory fine-tunes on the cells of the few fields it reviewed: 8, 31 or 91 fields for 100, 300 or 1,000
cells. An attention pool fitted afresh on them called a simulated lab's test fields at 55.0, 67.8 and 73.5 % (65.5
before the fine-tune) and the development fields at 52-67 % (89.2); the same fine-tuned weights under the starting
bundle's pool scored 76.8, 79.0 and 76.0 %, and 80.5-81.8 % (BENCHMARKS.md, issue 17, "A fine-tune keeps the field
pooling it cannot re-learn"). So the pool that calls the validation fields better is kept.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import log_loss

from leukoscope.config import Config
from leukoscope.errors import ConfigError
from leukoscope.models.mil import GatedAttentionPool, pool_bags
from leukoscope.models.registry import ENSEMBLE
from leukoscope.scoring.calibration import fit_temperature, softmax
from leukoscope.scoring.bundle import load_bundle

KEPT, FITTED = "kept from the starting bundle", "fitted on this run's fields"
MIN_FIELDS_TO_CHOOSE = 20  # validation fields; fewer cannot tell two pools apart, and the run's own fields are fewer still


def start_from_bundle(model: torch.nn.Module, cfg: Config, classes: list[str]) -> dict[str, str]:
    """Load a bundle's weights into `model` (fine-tuning); refused unless architecture and classes match."""
    source = cfg.train.init_from
    bundle = load_bundle(source)
    spec = bundle.meta["model"]
    if spec["name"] == ENSEMBLE:
        raise ConfigError(
            f"train.init_from={source}: an ensemble; fine-tune each of its members (training.ensemble_of in its bundle.json), then join them again"
        )
    if spec["name"] != model.model_name or spec.get("kwargs", {}) != model.model_args:
        theirs, ours = spec.get("kwargs", {}), model.model_args
        differ = ", ".join(f"{k} {theirs.get(k)} vs {ours.get(k)}" for k in sorted(set(theirs) | set(ours)) if theirs.get(k) != ours.get(k))
        raise ConfigError(f"train.init_from={source}: the bundle holds {spec['name']}, the config asks for {model.model_name} ({differ or 'another model'})")
    if bundle.classes != classes:
        raise ConfigError(f"train.init_from={source}: the bundle's classes {bundle.classes} differ from the data's {classes}")
    differing = [
        f"{section}.{k}"
        for section in ("preprocess", "cells")
        for k, v in bundle.meta.get("config", {}).get(section, {}).items()
        if k not in ("mean", "std") and getattr(getattr(cfg, section), k, v) != v
    ]
    if differing:
        print(f"warning: train.init_from: the bundle was trained with other settings of {', '.join(differing)}", file=sys.stderr)
    model.load_state_dict(bundle.model.state_dict())
    return {"bundle": str(Path(source).resolve()), "weights_sha256": bundle.weights_sha256}


def starting_pool(cfg: Config) -> GatedAttentionPool | None:
    """The attention pool of the bundle a run fine-tunes from; None when it starts from scratch or pools otherwise."""
    if not cfg.train.init_from:
        return None
    mil = load_bundle(cfg.train.init_from).mil
    return mil if isinstance(mil, GatedAttentionPool) else None


def better_pool(candidates: dict[str, GatedAttentionPool], bags: list[np.ndarray], labels: np.ndarray) -> tuple[str, dict[str, float]]:
    """The candidate whose calls on the (validation) fields have the least log-loss, each at its own fitted
    temperature, and every candidate's loss."""
    losses = {}
    for name, pool in candidates.items():
        logits = pool_bags(pool, bags)[0]
        probs = softmax(logits, fit_temperature(logits, labels))
        losses[name] = round(float(log_loss(labels, probs, labels=range(probs.shape[1]))), 4)
    return min(losses, key=losses.__getitem__), losses


def pool_for_fine_tune(
    cfg: Config, fitted: GatedAttentionPool, val_bags: list[np.ndarray], val_labels: np.ndarray
) -> tuple[GatedAttentionPool, dict[str, Any] | None]:
    """The field pooling a run keeps: its own fitted pool, or, when it fine-tunes from a bundle that has one, the
    pool of the two that calls the validation fields better (the starting bundle's when they are too few to tell);
    and what was chosen and why (None when there was no choice)."""
    start = starting_pool(cfg)
    if start is None:
        return fitted, None
    if len(val_bags) < MIN_FIELDS_TO_CHOOSE:
        return start, {"chosen": KEPT, "why": f"{len(val_bags)} validation fields, too few to choose by"}
    candidates = {FITTED: fitted, KEPT: start}
    chosen, losses = better_pool(candidates, val_bags, val_labels)
    return candidates[chosen], {"chosen": chosen, "validation_log_loss": losses}
