"""Leakage-safe splits: stratified by class, whole groups (patients, duplicates) on one side only."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from leukoscope.data.manifest import Manifest, ManifestRow, build_manifest
from leukoscope.errors import DataError

SPLITS_FORMAT = "leukoscope-splits/1"
SPLIT_NAMES = ("train", "val", "test")


def _group_units(rows: list[ManifestRow]) -> dict[str, list[int]]:
    units: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        units[r.group].append(i)
    return units


def _majority_label(rows: list[ManifestRow], members: list[int]) -> str:
    return Counter(rows[i].label for i in members).most_common(1)[0][0]


def _take(rows: list[ManifestRow], pool: list[str], units: dict[str, list[int]], targets: dict[str, int], rng: np.random.Generator) -> set[str]:
    """Pick whole groups per class, in random order, until each class reaches its target count."""
    by_class: dict[str, list[str]] = defaultdict(list)
    for g in pool:
        by_class[_majority_label(rows, units[g])].append(g)
    chosen: set[str] = set()
    for label, groups in sorted(by_class.items()):
        groups = sorted(groups)
        order = rng.permutation(len(groups))
        need = targets.get(label, 0)
        for k in order:
            g = groups[k]
            if need <= 0:
                break
            if len(units[g]) <= need:
                chosen.add(g)
                need -= len(units[g])
    return chosen


def make_splits(
    manifest: Manifest,
    test_per_class: int | None = None,
    test_fraction: float | None = None,
    val_fraction: float = 0.1,
    folds: int = 0,
    seed: int = 0,
    variant: str | None = None,
) -> dict[str, Any]:
    """Build the splits document. The test part is held out first; validation comes from the rest."""
    if test_per_class is not None and test_fraction is not None:
        raise DataError("give either --test-per-class or --test-fraction, not both")
    if test_fraction is not None and not 0 <= test_fraction < 1:
        raise DataError(f"--test-fraction must be in [0, 1), got {test_fraction}")
    if not 0 <= val_fraction < 1:
        raise DataError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    rows = manifest.rows
    rng = np.random.default_rng(seed)
    units = _group_units(rows)
    counts = Counter(r.label for r in rows)
    warnings: list[str] = []

    if test_per_class is not None:
        test_targets = {c: test_per_class for c in counts}
        for c, n in counts.items():
            if test_per_class >= n:
                raise DataError(f"class {c} has {n} images, too few for --test-per-class {test_per_class}")
    else:
        frac = 0.2 if test_fraction is None else test_fraction
        test_targets = {c: int(round(frac * n)) for c, n in counts.items()}
    test_groups = _take(rows, sorted(units), units, test_targets, rng)
    rest = [g for g in sorted(units) if g not in test_groups]
    rest_counts = Counter(r.label for g in rest for r in (rows[i] for i in units[g]))
    val_groups = _take(rows, rest, units, {c: int(round(val_fraction * n)) for c, n in rest_counts.items()}, rng)

    assignment = {}
    for g, members in units.items():
        split = "test" if g in test_groups else "val" if g in val_groups else "train"
        for i in members:
            assignment[i] = split
    doc_splits = {name: sorted(manifest.relative_path(rows[i]) for i, s in assignment.items() if s == name) for name in SPLIT_NAMES}

    fold_docs = []
    if folds:
        pool = [i for i, s in assignment.items() if s != "test"]
        if folds < 2:
            raise DataError(f"--folds must be 2 or more, got {folds}")
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        labels = [rows[i].label for i in pool]
        groups = [rows[i].group for i in pool]
        for tr, va in splitter.split(np.zeros(len(pool)), labels, groups):
            fold_docs.append(
                {
                    "train": sorted(manifest.relative_path(rows[pool[k]]) for k in tr),
                    "val": sorted(manifest.relative_path(rows[pool[k]]) for k in va),
                }
            )
    asked = {"test": test_per_class is not None or test_fraction != 0, "val": val_fraction > 0}
    for name in (n for n, wanted in asked.items() if wanted):
        held = {rows[i].label for i, s in assignment.items() if s == name}
        for c in sorted(set(counts) - held):
            warnings.append(f"class {c} has no image in {name} ({counts[c]} in all): its {name} figures cannot be measured")
    excluded = [{"path": b["path"], "reason": b["reason"]} for b in manifest.bad_files]
    excluded += [{"path": manifest.relative_path(r), "reason": "blank image"} for r in manifest.blank]
    if excluded:
        warnings.append(f"{len(excluded)} file(s) left out of every split (unreadable or blank); see 'excluded'")
    split_counts = {
        name: dict(sorted(Counter(rows[i].label for i, s in assignment.items() if s == name).items())) for name in SPLIT_NAMES
    }
    return {
        "format": SPLITS_FORMAT,
        "seed": seed,
        "dataset_fingerprint": manifest.fingerprint,
        "root": str(Path(manifest.root).resolve()),
        "variant": variant,
        "classes": sorted(counts),
        "params": {"test_per_class": test_per_class, "test_fraction": test_fraction, "val_fraction": val_fraction, "folds": folds},
        "counts": split_counts,
        "splits": doc_splits,
        "folds": fold_docs,
        "excluded": excluded,
        "warnings": warnings,
    }


def load_splits(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: splits file not found")
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a valid JSON splits file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != SPLITS_FORMAT:
        raise DataError(f"{path}: not a leukoscope splits file (expected format {SPLITS_FORMAT!r})")
    return doc


def split_membership(splits: dict[str, Any]) -> dict[str, str]:
    """Relative path -> split name, for the main train/val/test partition."""
    return {p: name for name, paths in splits["splits"].items() for p in paths}


def rows_for_split(manifest: Manifest, splits: dict[str, Any], split: str, fold: int | None = None) -> list[ManifestRow]:
    """The manifest rows of one split (or fold part); a listed image missing from the data is an error."""
    if fold is not None:
        if not 0 <= fold < len(splits["folds"]):
            raise DataError(f"fold {fold} does not exist; the splits file has {len(splits['folds'])} fold(s)")
        wanted = splits["folds"][fold].get(split, [])
        if split == "test":
            wanted = splits["splits"]["test"]
    else:
        if split not in splits["splits"]:
            raise DataError(f"split {split!r} not in the splits file; it has {', '.join(splits['splits'])}")
        wanted = splits["splits"][split]
    by_rel = {manifest.relative_path(r): r for r in manifest.rows}
    missing = [p for p in wanted if p not in by_rel]
    if missing:
        raise DataError(f"{len(missing)} image(s) of split {split!r} are not in the data at {manifest.root} (first: {missing[0]})")
    return [by_rel[p] for p in wanted]


def split_rows(data: str | Path, splits_file: str | Path, split: str) -> list[ManifestRow]:
    """One split of a splits file, from the data folder read in the variant the splits were made on."""
    splits = load_splits(splits_file)
    return rows_for_split(build_manifest(data, variant=splits.get("variant") or "Original"), splits, split)
