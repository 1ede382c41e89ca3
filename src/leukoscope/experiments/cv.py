"""`leukoscope cv`: k-fold training and evaluation over StratifiedGroupKFold folds."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np

from leukoscope.config import Config
from leukoscope.data.manifest import build_manifest
from leukoscope.data.split import load_splits
from leukoscope.engine.data import resolve_data_root, splits_from_config
from leukoscope.engine.train import train
from leukoscope.io_utils import write_json
from leukoscope.scoring.intervals import wilson


def run_cv(cfg: Config, folds: int, out: str | Path) -> dict[str, Any]:
    """Train one model per fold (validated on that fold's held-out part); summarise across folds."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.data.splits and load_splits(cfg.data.splits).get("folds"):
        splits_file = Path(cfg.data.splits)
        folds = len(load_splits(splits_file)["folds"])
    else:
        manifest = build_manifest(resolve_data_root(cfg), variant=cfg.data.variant)
        doc = splits_from_config(manifest, cfg, folds)
        splits_file = out / "splits.json"
        write_json(splits_file, doc)
    per_fold = []
    for k in range(folds):
        fold_cfg = copy.deepcopy(cfg)
        fold_cfg.data.splits = str(splits_file)
        fold_cfg.data.fold = k
        fold_cfg.name = f"{cfg.name}-fold{k}"
        train(fold_cfg, out / f"fold-{k}")
        metrics = json.loads((out / f"fold-{k}" / "metrics.json").read_text())
        per_fold.append({"fold": k, "val": metrics.get("val", {}), "test": metrics.get("test", {})})
    summary = summarise_folds(per_fold)
    write_json(out / "cv.json", summary)
    return summary


def summarise_folds(per_fold: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-fold rows, mean ± sd of accuracy and macro-F1, and the pooled Wilson interval."""
    summary: dict[str, Any] = {"folds": []}
    for part in ("val", "test"):
        accs = [f[part]["accuracy"] for f in per_fold if f[part]]
        f1s = [f[part].get("macro_f1", 0.0) for f in per_fold if f[part]]
        if not accs:
            continue
        correct = sum(round(f[part]["accuracy"] * f[part]["n"]) for f in per_fold if f[part])
        total = sum(f[part]["n"] for f in per_fold if f[part])
        summary[part] = {
            "accuracy_mean": float(np.mean(accs)),
            "accuracy_sd": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
            "macro_f1_mean": float(np.mean(f1s)),
            "macro_f1_sd": float(np.std(f1s, ddof=1)) if len(f1s) > 1 else 0.0,
            "pooled_accuracy": correct / total,
            "pooled_accuracy_ci": list(wilson(correct, total)),
            "pooled_n": total,
        }
    for f in per_fold:
        summary["folds"].append(
            {"fold": f["fold"], **{f"{p}_{k}": f[p].get(k) for p in ("val", "test") if f[p] for k in ("n", "accuracy", "macro_f1")}}
        )
    return summary
