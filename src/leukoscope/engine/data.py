"""The Lightning data module: manifest + splits + cached preprocessing + train-only augmentation."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from leukoscope.config import Config
from leukoscope.data.manifest import Manifest, ManifestRow, build_manifest, default_workers
from leukoscope.data.split import load_splits, make_splits, rows_for_split
from leukoscope.errors import DataError
from leukoscope.preprocess import Pipeline
from leukoscope.preprocess.augment import build_eval_transform, build_train_transform, expand_offline, hwc_to_chw
from leukoscope.preprocess.cache import PreprocessCache, default_cache_dir, preprocess_many
from leukoscope.preprocess.pipeline import channel_stats


class ArrayDataset(Dataset):
    """Preprocessed uint8 images held in memory, each with its label and source path."""

    def __init__(self, images: np.ndarray, labels: list[int], paths: list[str], transform: Any) -> None:
        self.images, self.labels, self.paths, self.transform = images, labels, paths, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(hwc_to_chw(self.images[i])), self.labels[i]


def resolve_data_root(cfg: Config) -> Path:
    """The configured dataset, or the synthetic default generated once into the cache folder."""
    if cfg.data.root:
        root = Path(cfg.data.root)
        if not root.exists():
            raise DataError(f"{root}: data folder not found (data.root)")
        return root
    from leukoscope.data.synth import synth_dataset

    n, seed = cfg.data.synth_per_class, cfg.data.seed
    root = Path(cfg.data.cache_dir or default_cache_dir()) / "synth" / f"n{n}-s{seed}-{cfg.preprocess.size}"
    if not (root / "cells.json").is_file():
        synth_dataset(root, per_class=n, size=max(cfg.preprocess.size, 96), seed=seed)
    return root


def splits_from_config(manifest: Manifest, cfg: Config, folds: int = 0) -> dict[str, Any]:
    """The splits the data section asks for (a per-class test count wins over a test fraction)."""
    return make_splits(
        manifest,
        test_per_class=cfg.data.test_per_class,
        test_fraction=None if cfg.data.test_per_class is not None else cfg.data.test_fraction,
        val_fraction=cfg.data.val_fraction,
        folds=folds,
        seed=cfg.data.seed,
        variant=cfg.data.variant,
    )


class SmearDataModule(L.LightningDataModule):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.root = resolve_data_root(cfg)
        self.pipeline = Pipeline(cfg.preprocess)
        self.manifest: Manifest | None = None
        self.splits: dict[str, Any] | None = None
        self.classes: list[str] = []
        self.datasets: dict[str, ArrayDataset] = {}
        self.failures: list[dict[str, str]] = []

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        cfg = self.cfg
        workers = default_workers()
        self.manifest = build_manifest(self.root, variant=cfg.data.variant, workers=workers)
        if cfg.data.splits:
            self.splits = load_splits(cfg.data.splits)
        else:
            self.splits = splits_from_config(self.manifest, cfg)
        if self.splits["dataset_fingerprint"] != self.manifest.fingerprint:
            print(f"warning: the splits file was made on data with fingerprint {self.splits['dataset_fingerprint']}, this data has {self.manifest.fingerprint}")
        self.classes = list(self.splits["classes"])
        cache = PreprocessCache(cfg.data.cache_dir or None, self.pipeline)
        arrays: dict[str, tuple[np.ndarray, list[int], list[str]]] = {}
        for split in ("train", "val", "test"):
            rows = rows_for_split(self.manifest, self.splits, split, cfg.data.fold)
            arrays[split] = self._load(rows, cache, workers, split)
        if not arrays["train"][1]:
            raise DataError(f"{self.root}: the training split is empty")
        if cfg.preprocess.normalize == "dataset" and cfg.preprocess.mean is None:
            cfg.preprocess.mean, cfg.preprocess.std = channel_stats(arrays["train"][0])
        mean, std = self.pipeline.mean_std()
        images, labels, paths = arrays["train"]
        if cfg.data.expand_per_class:
            images, labels, sources = expand_offline(images, labels, cfg.data.expand_per_class, cfg.augment, seed=cfg.data.seed)
            paths = [arrays["train"][2][s] for s in sources]
        self.datasets["train"] = ArrayDataset(images, labels, paths, build_train_transform(cfg.augment, mean, std))
        for split in ("val", "test"):
            self.datasets[split] = ArrayDataset(*arrays[split], build_eval_transform(mean, std))

    def _load(self, rows: list[ManifestRow], cache: PreprocessCache, workers: int, split: str) -> tuple[np.ndarray, list[int], list[str]]:
        unknown = sorted({r.label for r in rows} - set(self.classes))
        if unknown:
            raise DataError(f"split {split!r} has label(s) {', '.join(unknown)} not among the classes {self.classes}")
        if self.cfg.cells.enabled:
            return self._load_cells(rows, workers, split)
        images, failures = preprocess_many([r.path for r in rows], [r.sha256 for r in rows], cache, workers, desc=f"preprocessing {split}")
        failed = {f["path"] for f in failures}
        self.failures += failures
        kept = [r for r in rows if r.path not in failed]
        return images, [self.classes.index(r.label) for r in kept], [r.path for r in kept]

    def _load_cells(self, rows: list[ManifestRow], workers: int, split: str) -> tuple[np.ndarray, list[int], list[str]]:
        """Leukocyte crops of the split's fields; each crop keeps its field's path (the group) and label."""
        from leukoscope.cells.cache import CellCropCache, crops_many

        cache = CellCropCache(self.cfg.data.cache_dir or None, self.pipeline, self.cfg.cells)
        per_field, failures = crops_many([r.path for r in rows], [r.sha256 for r in rows], cache, workers, desc=f"cell crops {split}")
        self.failures += failures
        images, labels, paths = [], [], []
        for r in rows:
            crops = per_field.get(r.path)
            if crops is None or not len(crops):
                continue
            images.append(crops)
            labels += [self.classes.index(r.label)] * len(crops)
            paths += [r.path] * len(crops)
        size = self.pipeline.config.size
        return (np.concatenate(images) if images else np.zeros((0, size, size, 3), np.uint8)), labels, paths

    @property
    def train_counts(self) -> list[int]:
        counts = Counter(self.datasets["train"].labels)
        return [counts.get(i, 0) for i in range(len(self.classes))]

    def split_counts(self) -> dict[str, dict[str, int]]:
        return {s: dict(Counter(self.classes[i] for i in d.labels)) for s, d in self.datasets.items()}

    def _loader(self, split: str, train: bool) -> DataLoader:
        ds = self.datasets[split]
        sampler = None
        if train and self.cfg.data.balanced_sampler:
            counts = np.bincount(ds.labels, minlength=len(self.classes)).astype(float)
            weights = 1.0 / counts[np.asarray(ds.labels)]
            sampler = WeightedRandomSampler(torch.as_tensor(weights), num_samples=len(ds), replacement=True)
        return DataLoader(
            ds,
            batch_size=self.cfg.data.batch_size,
            shuffle=train and sampler is None,
            sampler=sampler,
            num_workers=self.cfg.data.num_workers,
            persistent_workers=self.cfg.data.num_workers > 0,
            drop_last=train and len(ds) > self.cfg.data.batch_size,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)
