"""The Lightning data module: manifest + splits + cached preprocessing + train-only augmentation."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from leukoscope.cells.crops import SUPPRESSED_WITH_FILL
from leukoscope.cells.review import ReviewedCell
from leukoscope.config import Config
from leukoscope.data.manifest import Manifest, ManifestRow, build_manifest, default_workers
from leukoscope.data.split import load_splits, make_splits, rows_for_split
from leukoscope.engine.crop_scale import CropScale, crop_scale
from leukoscope.errors import DataError
from leukoscope.preprocess import Pipeline
from leukoscope.preprocess.augment import ModelInput, build_augment, expand_offline, hwc_to_chw
from leukoscope.preprocess.cache import PreprocessCache, default_cache_dir, preprocess_many
from leukoscope.preprocess.pipeline import channel_stats


class ArrayDataset(Dataset):
    """Preprocessed uint8 images held in memory, each with its label and source path, served as uint8 CHW through
    `transform` (the training augmentation; None: as they are). With `alternatives` (arrays aligned with `images`),
    each access draws the image or one of its alternatives alike. With `views` > 1 an item is that many independent
    draws of the transform, stacked (views, C, H, W)."""

    def __init__(
        self,
        images: np.ndarray,
        labels: list[int],
        paths: list[str],
        transform: Any = None,
        alternatives: Sequence[np.ndarray] = (),
        views: int = 1,
    ) -> None:
        if any(len(a) != len(images) for a in alternatives):
            raise ValueError(f"alternatives of {[len(a) for a in alternatives]} images for {len(images)} images")
        self.labels, self.paths, self.transform = labels, paths, transform
        self.versions = [images, *alternatives]
        self.views = views
        self._shared: list[torch.Tensor] | list[np.ndarray] | None = None

    @property
    def images(self) -> np.ndarray:
        """The images as given (the first version): what evaluation and calibration read."""
        return self.versions[0]

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for a spawned loader worker: the images go as shared memory, which the worker maps, not as
        bytes. As bytes, each training worker of the cell recipe kept its own copy of the 342 MB of crops, and the
        training process waited for each worker to read them (BENCHMARKS.md, issue 17, "Loader workers that map the crops")."""
        state = self.__dict__.copy()
        state["versions"] = self._shared_versions()
        del state["_shared"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        versions = [v.numpy() if isinstance(v, torch.Tensor) else v for v in state["versions"]]
        self.__dict__.update(state, versions=versions, _shared=None)

    def _shared_versions(self) -> list[torch.Tensor] | list[np.ndarray]:
        """The images in shared memory, moved there once; this process then reads them there too. Where shared
        memory is too small for them (a container's /dev/shm), the images as they are, with a warning."""
        if self._shared is None:
            try:
                self._shared = [torch.from_numpy(np.ascontiguousarray(v)).share_memory_() for v in self.versions]
            except RuntimeError as error:
                size = sum(v.nbytes for v in self.versions) / 2**20
                print(f"warning: {size:.1f} MiB of images could not go to shared memory ({error}); each loader worker gets a copy")
                self._shared = self.versions
                return self._shared
            self.versions = [t.numpy() for t in self._shared]
        return self._shared

    def __len__(self) -> int:
        return len(self.labels)

    def _view(self, i: int) -> torch.Tensor:
        version = int(torch.randint(len(self.versions), ())) if len(self.versions) > 1 else 0
        image = hwc_to_chw(self.versions[version][i])
        return image if self.transform is None else self.transform(image)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        if self.views > 1:
            return torch.stack([self._view(i) for _ in range(self.views)]), self.labels[i]
        return self._view(i), self.labels[i]


def data_loader(
    ds: Dataset, batch_size: int, workers: int, shuffle: bool = False, sampler: WeightedRandomSampler | None = None, drop_last: bool = False
) -> DataLoader:
    """Batches of `ds`, prepared on `workers` processes of their own (0: in this one) that live as long as the loader.

    The workers are spawned, not forked: a forked child inherits OpenCV's and OpenMP's thread pools with whatever
    locks they held, and can hang at its first call into them (workers.py). A spawned worker imports PyTorch once
    and receives the dataset pickled; shared-memory tensors in its transform (the blur warm-up) stay shared."""
    return DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=shuffle,
        sampler=sampler,
        num_workers=workers,
        persistent_workers=workers > 0,
        multiprocessing_context="spawn" if workers > 0 else None,
        drop_last=drop_last and len(ds) > batch_size,
    )


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


def crops_with_fill(cfg: Config) -> bool:
    """Whether the training items are cell crops with the constant fill around each cell (cells.suppress constant or
    disc): what an affine move fills in, the blur keeps sharp and a frame cut cuts against."""
    return cfg.cells.enabled and cfg.cells.suppress in SUPPRESSED_WITH_FILL


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
        self.review: dict[str, Any] | None = None  # what data.cell_labels contributed, recorded with the run
        self.train_originals: tuple[np.ndarray, list[int], list[str]] | None = None  # training items before any copies
        self.reviewed_labels: dict[str, list[int | None]] = {}  # per training field that data.cell_labels reviewed: a label per crop, None = left out
        self.crop_scale: CropScale = CropScale(None, 1.0, None, "")  # the pixel scale cell crops are cut at (data.pixel_size)
        self.reviews: list[ReviewedCell] = []  # data.cell_labels' reviewed cells
        self.model_input: ModelInput | None = None  # a batch of uint8 items as the model reads it, set up with the datasets

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        cfg = self.cfg
        if cfg.data.cell_labels and not cfg.cells.enabled:
            raise DataError(f"data.cell_labels={cfg.data.cell_labels}: reviewed cells supervise a cell-level model; set cells.enabled=true (configs/cells.yaml)")
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
        rows = {split: rows_for_split(self.manifest, self.splits, split, cfg.data.fold) for split in ("train", "val", "test")}
        if cfg.data.cell_labels:
            from leukoscope.cells.review import read_review

            self.reviews = read_review(cfg.data.cell_labels, self.classes)
        if cfg.cells.enabled or cfg.data.pixel_size is not None:
            reviewed_scales = [r.pixel_scale for r in self.reviews if r.pixel_scale is not None]
            self.crop_scale = crop_scale(cfg, [r.path for r in rows["train"]], reviewed_scales)
            if self.crop_scale.reference is not None:
                print(f"cell crops: {self.crop_scale.note}")
        for split in ("train", "val", "test"):
            arrays[split] = self._load(rows[split], cache, workers, split)
        if not arrays["train"][1]:
            raise DataError(f"{self.root}: the training split is empty")
        if cfg.preprocess.normalize == "dataset" and cfg.preprocess.mean is None:
            if cfg.train.init_from:  # a fine-tuned model keeps the statistics its weights were trained with
                from leukoscope.scoring.bundle import bundle_normalization

                cfg.preprocess.mean, cfg.preprocess.std = bundle_normalization(cfg.train.init_from)
            else:
                cfg.preprocess.mean, cfg.preprocess.std = channel_stats(arrays["train"][0])
        mean, std = self.pipeline.mean_std()
        self.train_originals = arrays["train"]
        images, labels, paths = arrays["train"]
        outline_copies = self._outline_copies(rows["train"], workers) if cfg.cells.enabled and cfg.cells.outline_jitter else []
        if cfg.cells.enabled and cfg.cells.acquisition_copies:
            images, labels, paths = self._with_acquisition_copies(rows["train"], workers)
            outline_copies = [np.concatenate([c, images[len(c) :]]) for c in outline_copies]  # an acquisition copy's crops have no other outlines
        if cfg.data.expand_per_class:
            images, labels, sources = expand_offline(images, labels, cfg.data.expand_per_class, cfg.augment, seed=cfg.data.seed)
            paths = [paths[s] for s in sources]
        views = 2 if cfg.train.consistency else 1
        self.datasets["train"] = ArrayDataset(images, labels, paths, self._train_augment(), outline_copies, views)
        for split in ("val", "test"):
            self.datasets[split] = ArrayDataset(*arrays[split])
        self.model_input = ModelInput(mean, std, cfg.augment.random_erasing)

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

    def _load_cells(
        self, rows: list[ManifestRow], workers: int, split: str, acquisition: int = 0, outline: int = 0
    ) -> tuple[np.ndarray, list[int], list[str]]:
        """Leukocyte crops of the split's fields; each crop keeps its field's path (the group) and label.
        `acquisition` k >= 1: the crops of each field's k-th random other acquisition. `outline` k >= 1: the
        same cells cut along their k-th moved outlines, crop for crop as without."""
        from leukoscope.cells.cache import CellCropCache, crops_many

        scale = self.crop_scale
        cache = CellCropCache(
            self.cfg.data.cache_dir or None, self.pipeline, self.cfg.cells, acquisition, self.cfg.data.seed, outline, scale.pixel_scale, scale.training_scale
        )
        desc = f"cell crops {split}" + (f", acquisition copy {acquisition}" if acquisition else "") + (f", outline copy {outline}" if outline else "")
        per_field, failures = crops_many([r.path for r in rows], [r.sha256 for r in rows], cache, workers, desc=desc)
        if not acquisition and not outline:
            self.failures += failures
        if split == "train" and self.cfg.data.cell_labels and not acquisition and not outline:
            reviewed = self._reviewed(rows)
            self.reviewed_labels = {path: crop_labels for path, (_, crop_labels) in reviewed.items()}
            per_field.update({path: crops for path, (crops, _) in reviewed.items()})
        images, labels, paths = [], [], []
        for r in rows:
            crops = per_field.get(r.path)
            if acquisition and r.path in self.reviewed_labels:
                continue  # reviewed cells were matched to the field as imaged, not to another acquisition's detections
            if crops is None or not len(crops):
                continue
            field_labels = self.reviewed_labels.get(r.path, [self.classes.index(r.label)] * len(crops))
            keep = [i for i, label in enumerate(field_labels) if label is not None]
            images.append(crops[keep])
            labels += [field_labels[i] for i in keep]
            paths += [r.path] * len(keep)
        size = self.pipeline.config.size
        return (np.concatenate(images) if images else np.zeros((0, size, size, 3), np.uint8)), labels, paths

    def _outline_copies(self, rows: list[ManifestRow], workers: int) -> list[np.ndarray]:
        """The training crops cut again along moved outlines, `cells.outline_copies` times, each aligned crop
        for crop with the training crops as cut."""
        copies = []
        for k in range(1, self.cfg.cells.outline_copies + 1):
            images, _, paths = self._load_cells(rows, workers, "train", outline=k)
            if paths != self.train_originals[2]:
                raise RuntimeError(f"outline copy {k} holds other cells than the training crops: {len(paths)} crops against {len(self.train_originals[2])}")
            copies.append(images)
        return copies

    def _train_augment(self) -> Any:
        """Training augmentation. Around a suppressed cell crop the constant is what an affine move
        fills in and what the blur keeps sharp; a whole field's border is slide glass."""
        if crops_with_fill(self.cfg):
            from leukoscope.cells.cache import crop_config

            fill = crop_config(self.cfg.cells).fill
            return build_augment(self.cfg.augment, fill, outline_fill=fill)
        return build_augment(self.cfg.augment, 255)

    def _with_acquisition_copies(self, rows: list[ManifestRow], workers: int) -> tuple[np.ndarray, list[int], list[str]]:
        """The training crops, then those of every field's `cells.acquisition_copies` random other acquisitions."""
        parts = [self.train_originals]
        parts += [self._load_cells(rows, workers, "train", k) for k in range(1, self.cfg.cells.acquisition_copies + 1)]
        return np.concatenate([p[0] for p in parts]), [y for p in parts for y in p[1]], [x for p in parts for x in p[2]]

    def _reviewed(self, train_rows: list[ManifestRow]) -> dict[str, tuple[np.ndarray, list[int | None]]]:
        """Training fields named in data.cell_labels: their crops and a label per crop (None = left out).

        A reviewed class supervises its cell; "other leukocyte" and "not a leukocyte" leave the cell
        out (there is no trained detector to teach); "unsure" and unreviewed cells keep the field's label.
        """
        from leukoscope.cells.cache import preprocessed_stack, training_field_crops
        from leukoscope.cells.review import NOT_A_LEUKOCYTE, OTHER_LEUKOCYTE, match_cell
        from leukoscope.io_utils import file_sha256

        source = self.cfg.data.cell_labels
        reviews = self.reviews
        by_sha: dict[str, list[ManifestRow]] = {}
        by_name: dict[str, list[ManifestRow]] = {}
        for r in self.manifest.rows:
            by_sha.setdefault(r.sha256, []).append(r)
            by_name.setdefault(Path(r.path).name, []).append(r)
        train_paths = {r.path for r in train_rows}
        per_field: dict[str, list] = {}
        outside = 0
        for review in reviews:
            named = by_sha.get(review.field_sha256, []) if review.field_sha256 else by_name.get(review.field, [])
            if not named:
                raise DataError(f"{source} row {review.row}: field {review.field or review.field_sha256} is not in the data ({self.root})")
            if not review.field_sha256 and len(named) > 1:
                raise DataError(f"{source} row {review.row}: {len(named)} fields are named {review.field}; give field_sha256")
            in_train = [r for r in named if r.path in train_paths]
            outside += not in_train
            for r in in_train:
                per_field.setdefault(r.path, []).append(review)
        out: dict[str, tuple[np.ndarray, list[int | None]]] = {}
        counts = {"supervised": 0, "left_out": 0, "unsure": 0}
        rows_by_path = {r.path: r for r in train_rows}
        for path, field_reviews in per_field.items():
            found = training_field_crops(path, self.cfg.cells, self.pipeline.config.max_pixels, self._review_scale(field_reviews), self.crop_scale.training_scale)
            field_label = self.classes.index(rows_by_path[path].label)
            crop_labels: list[int | None] = [field_label] * len(found.cells)
            for review in field_reviews:
                k = match_cell(found.cells, review.box)
                if k is None:
                    raise DataError(f"{source} row {review.row}: no detected cell at box {list(review.box)} in {path}")
                if review.label in (OTHER_LEUKOCYTE, NOT_A_LEUKOCYTE):
                    crop_labels[k] = None
                    counts["left_out"] += 1
                elif review.label in self.classes:
                    crop_labels[k] = self.classes.index(review.label)
                    counts["supervised"] += 1
                else:
                    counts["unsure"] += 1
            out[path] = (preprocessed_stack(self.pipeline, found.crops), crop_labels)
        self.review = {"file": str(source), "sha256": file_sha256(source), "reviewed_rows": len(reviews), "fields": len(out), "outside_train": outside, **counts}
        print(
            f"reviewed cells ({source}): {counts['supervised']} supervised by their reviewed class, {counts['left_out']} left out, "
            f"{counts['unsure']} unsure (field label kept), {outside} in fields outside the training split (not used)"
        )
        return out

    def _review_scale(self, field_reviews: list[ReviewedCell]) -> float | None:
        """Where a reviewed field's cells are found: where its case found them, when the run cuts at a pixel scale and the
        review recorded one (its boxes then name the cells the reviewer saw); else at the run's scale."""
        recorded = [r.pixel_scale for r in field_reviews if r.pixel_scale is not None]
        return recorded[0] if recorded and self.crop_scale.reference is not None else self.crop_scale.pixel_scale

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
        return data_loader(ds, self.cfg.data.batch_size, self.cfg.data.num_workers, shuffle=train and sampler is None, sampler=sampler, drop_last=train)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)

    def on_after_batch_transfer(self, batch: tuple[torch.Tensor, torch.Tensor], dataloader_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A loader's batch of uint8 items as the model reads it, made where the model runs (Lightning's hook)."""
        images, labels = batch
        training = self.trainer is not None and self.trainer.training
        return self.model_input(images, training=training), labels
