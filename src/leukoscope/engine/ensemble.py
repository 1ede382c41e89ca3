"""`leukoscope ensemble`: join bundles trained from different seeds on one split into one bundle.

One seed of the cell recipe can climb later and stop lower than another (BENCHMARKS.md, issue 17);
the mean of several is steadier than any one of them. The joined bundle is scored like a trained one:
its temperature, abstention threshold, screening cut and out-of-distribution fit are fitted anew on
the members' common validation split, which none of them trained on.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from leukoscope.config import Config, apply_overrides, config_from_dict
from leukoscope.data.split import load_splits, split_membership
from leukoscope.engine.data import SmearDataModule
from leukoscope.engine.train import check_targets, finalize, record_run
from leukoscope.errors import ConfigError, LeukoscopeError
from leukoscope.models.ensemble import Ensemble
from leukoscope.models.mil import GatedAttentionPool, PoolEnsemble
from leukoscope.models.registry import ENSEMBLE
from leukoscope.scoring.bundle import Bundle, load_bundle

# what every member must share, so that one crop means the same to each of them
SHARED_CONFIG = ("preprocess", "cells")


class EnsembleError(LeukoscopeError):
    """Bundles that cannot be joined: another split, other crops, other classes."""


def run_splits_path(bundle: Bundle) -> Path:
    """The splits file the member's run recorded beside its bundle (`train` writes it there)."""
    path = bundle.path.parent / "splits.json"
    if not path.is_file():
        raise EnsembleError(f"{bundle.path}: no splits.json in its run folder, so its validation fields cannot be checked against the other members'")
    return path


def bundle_run_data(bundle: Bundle, data_root: str | None = None, overrides: Sequence[str] = ()) -> tuple[Config, SmearDataModule]:
    """The config and the loaded data of the run that trained `bundle` (its recorded split), with `overrides`:
    what `finalize` needs to fit a bundle's pool, calibration and thresholds again without training. Refuses data
    whose classes are not the bundle's."""
    settings = apply_overrides(copy.deepcopy(bundle.meta["config"]), [f"data.splits={run_splits_path(bundle)}", *overrides])
    if data_root is not None:
        settings["data"]["root"] = data_root
    cfg = config_from_dict(settings)
    check_targets(cfg)
    dm = SmearDataModule(cfg)
    dm.setup()
    if dm.classes != bundle.classes:
        raise EnsembleError(f"{dm.root}: the data's classes {dm.classes} are not those of {bundle.path}: {bundle.classes}")
    return cfg, dm


def check_members(bundles: Sequence[Bundle]) -> None:
    """Refuse, naming the first bundle that differs, members a joined bundle could not stand for."""
    if len(bundles) < 2:
        raise EnsembleError(f"an ensemble joins at least 2 bundles, got {len(bundles)}")
    first = bundles[0]
    first_config, first_split = first.meta.get("config", {}), split_membership(load_splits(run_splits_path(first)))
    seen: dict[str, Path] = {}
    for b in bundles:
        if b.meta["model"]["name"] == ENSEMBLE:
            raise EnsembleError(f"{b.path}: an ensemble already; join its members instead")
        if b.weights_sha256 in seen:
            raise EnsembleError(f"{b.path}: the same weights as {seen[b.weights_sha256]}; an ensemble needs models trained from different seeds")
        seen[b.weights_sha256] = b.path
    for b in bundles[1:]:
        config = b.meta.get("config", {})
        problems = [
            f"classes {b.classes} vs {first.classes}" if b.classes != first.classes else "",
            "another model" if (b.meta["model"]["name"], b.meta["model"].get("kwargs")) != (first.meta["model"]["name"], first.meta["model"].get("kwargs")) else "",
            *(f"other {section} settings" for section in SHARED_CONFIG if config.get(section) != first_config.get(section)),
            "other training data" if b.meta.get("data", {}).get("fingerprint") != first.meta.get("data", {}).get("fingerprint") else "",
            "another split" if split_membership(load_splits(run_splits_path(b))) != first_split else "",
            "another fold" if config.get("data", {}).get("fold") != first_config.get("data", {}).get("fold") else "",
        ]
        if any(problems):
            raise EnsembleError(f"{b.path}: cannot join {first.path}: {', '.join(p for p in problems if p)}")


def ensemble_pool(bundles: Sequence[Bundle]) -> PoolEnsemble | None:
    """The members' own attention pools side by side, or None where the members average their cells."""
    pools = [b.mil for b in bundles]
    if all(p is None for p in pools):
        return None
    if not all(isinstance(p, GatedAttentionPool) for p in pools):
        raise EnsembleError("members pool their cells differently: " + ", ".join(f"{b.path}: {b.meta['aggregate']['method']}" for b in bundles))
    return PoolEnsemble(pools, [b.mil_temperature for b in bundles])


def join_bundles(members: Sequence[str | Path], out: str | Path, data_root: str | None = None, overrides: Sequence[str] = ()) -> Path:
    """Join trained bundles into `out`/bundle, calibrated on their validation split; returns the bundle folder.

    `overrides` may set `eval.*` only: the members fix the crops, the model and the split."""
    if bad := [o for o in overrides if not o.startswith("eval.")]:
        raise ConfigError(f"{bad[0]}: an ensemble takes eval.* settings only; its members fix everything else")
    bundles = [load_bundle(p) for p in members]
    check_members(bundles)
    out = Path(out)
    print(f"joining {len(bundles)} bundles: {', '.join(str(b.path) for b in bundles)}", file=sys.stderr)
    cfg, dm = bundle_run_data(bundles[0], data_root, overrides)
    cfg.name = f"{cfg.name}-ensemble"
    model = Ensemble([b.model for b in bundles])
    model.model_name = ENSEMBLE
    out.mkdir(parents=True, exist_ok=True)
    data_info = record_run(out, cfg, dm)
    training = {"ensemble_of": [_member_record(b) for b in bundles]}
    training["seconds"] = round(sum(m["seconds"] or 0 for m in training["ensemble_of"]), 1)
    print("scoring the members together, calibrating on validation", file=sys.stderr)
    return finalize(cfg, model, dm, out, data_info, training, pool=ensemble_pool(bundles))


def _member_record(bundle: Bundle) -> dict[str, Any]:
    """Which trained weights a member is, and what training it cost."""
    trained = bundle.meta.get("training", {})
    seed = bundle.meta.get("config", {}).get("train", {}).get("seed")
    return {"bundle": str(bundle.path.resolve()), "weights_sha256": bundle.weights_sha256, "seed": seed, "seconds": trained.get("seconds")}
