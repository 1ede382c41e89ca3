"""Background probe: how much label information the leukocyte-free background carries.

A small model is trained on patches that contain no leukocyte (red cells and plasma only), with the
same splits as the main model; its test accuracy is the background's share of the signal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from leukoscope.cells.detect import leukocyte_mask
from leukoscope.config import ANNOTATION_BOX, TrainConfig
from leukoscope.data.images import read_rgb
from leukoscope.data.manifest import build_manifest
from leukoscope.data.split import load_splits, make_splits, rows_for_split
from leukoscope.engine.module import ClassifierModule
from leukoscope.errors import DataError, ImageError
from leukoscope.losses import FocalLoss
from leukoscope.models import create_model
from leukoscope.preprocess.steps import IMAGENET_MEAN, IMAGENET_STD
from leukoscope.progress import on_terminal, progress
from leukoscope.scoring.intervals import wilson
from leukoscope.scoring.runner import run_model


def background_patches(rgb: np.ndarray, size: int, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Up to `count` random size x size patches touching no leukocyte and not the annotation box."""
    h, w = rgb.shape[:2]
    if h < size or w < size:
        return []
    blocked = leukocyte_mask(rgb, grow=0.5).astype(np.uint8)
    blocked[int(h * ANNOTATION_BOX[0]) :, int(w * ANNOTATION_BOX[1]) :] = 1
    integral = cv2.integral(blocked)
    free = integral[size:, size:] - integral[:-size, size:] - integral[size:, :-size] + integral[:-size, :-size]
    ys, xs = np.nonzero(free[: h - size + 1, : w - size + 1] == 0)
    if not len(ys):
        return []
    picks = rng.choice(len(ys), size=min(count, len(ys)), replace=False)
    return [rgb[ys[k] : ys[k] + size, xs[k] : xs[k] + size].copy() for k in picks]


def _patch_arrays(rows: list, classes: list[str], size: int, per_image: int, seed: int, desc: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images, labels, owners = [], [], []
    for i, r in enumerate(progress(rows, desc)):
        try:
            rgb = read_rgb(r.path)
        except ImageError:
            continue
        for p in background_patches(rgb, size, per_image, rng):
            images.append(p)
            labels.append(classes.index(r.label))
            owners.append(i)
    if not images:
        return np.zeros((0, size, size, 3), np.uint8), np.zeros(0, int), np.zeros(0, int)
    return np.stack(images), np.array(labels), np.array(owners)


def _loader(images: np.ndarray, labels: np.ndarray, shuffle: bool, batch_size: int = 64) -> DataLoader:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255)
    x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return DataLoader(TensorDataset(x, torch.from_numpy(labels)), batch_size=batch_size, shuffle=shuffle)


def run_background_probe(
    data: str | Path,
    splits_file: str | Path | None = None,
    patch: int = 56,
    per_image: int = 4,
    epochs: int = 8,
    seed: int = 0,
    variant: str = "Original",
) -> dict[str, Any]:
    """Train the probe on training fields' background patches; score it on the test fields'."""
    L.seed_everything(seed, verbose=False)
    manifest = build_manifest(data, variant=variant)
    splits = load_splits(splits_file) if splits_file else make_splits(manifest, test_fraction=0.2, val_fraction=0.1, seed=seed)
    classes = list(splits["classes"])
    arrays = {s: _patch_arrays(rows_for_split(manifest, splits, s), classes, patch, per_image, seed, f"background patches {s}") for s in ("train", "val", "test")}
    train_x, train_y, _ = arrays["train"]
    test_x, test_y, test_owner = arrays["test"]
    if not len(train_x) or not len(test_x):
        raise DataError(f"{data}: no leukocyte-free {patch} px patch found (images too small or too crowded)")
    model = create_model("vgg19_bn_mhsa", len(classes), width=0.125, heads=4, head_hidden=64, attention_after=4, input_size=patch)
    cfg = TrainConfig(max_epochs=epochs, lr=2e-3, channels_last=False)
    module = ClassifierModule(model, FocalLoss(gamma=0.0), cfg, len(classes))
    trainer = L.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_model_summary=False, enable_progress_bar=on_terminal(), num_sanity_val_steps=0)
    val_x, val_y, _ = arrays["val"]
    trainer.fit(module, _loader(train_x, train_y, True), _loader(val_x, val_y, False) if len(val_x) else None)
    logits, _ = run_model(model, test_x, IMAGENET_MEAN, IMAGENET_STD, features=False)
    correct = int((logits.argmax(1) == test_y).sum())
    # per image: mean log-probability over its patches
    log_p = torch.log_softmax(torch.from_numpy(logits), 1).numpy()
    owners = np.unique(test_owner)
    image_pred = np.array([log_p[test_owner == o].mean(0).argmax() for o in owners])
    image_true = np.array([test_y[test_owner == o][0] for o in owners])
    image_correct = int((image_pred == image_true).sum())
    counts = np.bincount(test_y, minlength=len(classes))
    return {
        "classes": classes,
        "patch": patch,
        "patches": {s: int(len(a[0])) for s, a in arrays.items()},
        "accuracy": correct / len(test_y),
        "accuracy_ci": list(wilson(correct, len(test_y))),
        "image_accuracy": image_correct / len(owners),
        "image_accuracy_ci": list(wilson(image_correct, len(owners))),
        "n_images": int(len(owners)),
        "chance": float(counts.max() / counts.sum()),
        "splits_fingerprint": splits.get("dataset_fingerprint"),
    }
