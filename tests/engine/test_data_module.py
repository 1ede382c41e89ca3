import pickle

import cv2
import numpy as np
import pytest
import torch

from leukoscope.config import AugmentConfig, load_config
from leukoscope.engine.data import ArrayDataset, SmearDataModule, data_loader
from leukoscope.preprocess.augment import build_augment, set_blur_strength
from leukoscope.preprocess.steps import IMAGENET_MEAN, IMAGENET_STD


@pytest.fixture()
def cell_module(cell_data, cell_overrides, tmp_path):
    """A set-up data module of the cell recipe on the synthetic cell data, with more overrides, cached in its own folder."""

    def make(cache: str, *overrides: str) -> SmearDataModule:
        cfg = load_config("configs/cells.yaml", [f"data.root={cell_data}", *cell_overrides, f"data.cache_dir={tmp_path / cache}", *overrides])
        dm = SmearDataModule(cfg)
        dm.setup()
        return dm

    return make


def test_augmentation_only_touches_training_items(smoke_config):
    dm = SmearDataModule(smoke_config)
    dm.setup()
    for split in ("val", "test"):
        ds = dm.datasets[split]
        assert len(ds) > 0
        torch.manual_seed(0)
        a = ds[0][0]
        torch.manual_seed(1)
        assert torch.equal(a, ds[0][0])  # no randomness outside training
    train = dm.datasets["train"]
    torch.manual_seed(0)
    views = [train[0][0] for _ in range(6)]
    assert any(not torch.equal(views[0], v) for v in views[1:])


def test_loaders_serve_uint8_items_and_the_batch_hook_makes_the_model_input(smoke_config):
    """Items cross from the loader workers as uint8; the batch is normalised once where the model runs."""
    smoke_config.data.num_workers = 0
    dm = SmearDataModule(smoke_config)
    dm.setup()
    images, labels = next(iter(dm.val_dataloader()))
    assert images.dtype == torch.uint8
    x, same_labels = dm.on_after_batch_transfer((images, labels), 0)
    mean, std = (torch.tensor(v)[:, None, None] for v in dm.pipeline.mean_std())
    assert torch.equal(same_labels, labels) and torch.allclose(x, (images.float() / 255 - mean) / std, atol=1e-5)


def test_splits_membership_matches_datasets(smoke_config):
    dm = SmearDataModule(smoke_config)
    dm.setup()
    root = dm.manifest.root
    for split in ("train", "val", "test"):
        rel = sorted(__import__("os").path.relpath(p, root) for p in dm.datasets[split].paths)
        assert rel == sorted(dm.splits["splits"][split])


def test_offline_expansion_after_split_on_training_only(smoke_config):
    smoke_config.data.expand_per_class = 20
    dm = SmearDataModule(smoke_config)
    dm.setup()
    train = dm.datasets["train"]
    assert np.bincount(train.labels).tolist() == [20, 20, 20, 20]
    train_files = set(dm.splits["splits"]["train"])
    import os

    assert {os.path.relpath(p, dm.manifest.root) for p in train.paths} <= train_files
    for split in ("val", "test"):  # untouched: exactly the split's own images, once each
        assert len(dm.datasets[split]) == len(dm.splits["splits"][split])


def test_acquisition_copies_add_shifted_training_crops_only(cell_module):
    """Each training field is also cut from a random other acquisition of it; validation and test are not."""
    plain, copied, again = (cell_module(cache, f"cells.acquisition_copies={copies}") for cache, copies in (("a", 0), ("b", 1), ("c", 1)))
    originals, train = copied.train_originals, copied.datasets["train"]
    n = len(originals[0])
    assert np.array_equal(train.images[:n], plain.datasets["train"].images) and len(plain.datasets["train"]) == n
    assert len(train) > 1.5 * n  # one copy of each field: its cells as the detector finds them in the other acquisition
    copies = train.images[n:]
    assert set(train.paths[n:]) <= set(originals[2])
    label_of = dict(zip(originals[2], originals[1]))
    assert all(label_of[p] == y for p, y in zip(train.paths[n:], train.labels[n:]))
    assert np.abs(copies[: min(n, len(copies))].astype(int).mean() - train.images[:n].astype(int).mean()) < 30  # the same cells, shifted
    assert np.array_equal(copies, again.datasets["train"].images[n:])  # recomputed in a fresh cache: the same draws
    for split in ("val", "test"):
        assert np.array_equal(copied.datasets[split].images, plain.datasets[split].images)


def test_outline_copies_cut_the_same_training_cells_along_moved_outlines(cell_module):
    """Each training cell is also cut along outlines moved in or out, crop for crop with its own crop;
    a training draw picks any of its cuts; validation and test keep the detector's outlines."""
    from leukoscope.cells.cache import crop_config

    plain, moved, again = (cell_module(cache, f"cells.outline_jitter={jitter}") for cache, jitter in (("a", 0), ("b", 2.5), ("c", 2.5)))
    train = moved.datasets["train"]
    fill = crop_config(moved.cfg.cells).fill
    assert len(plain.datasets["train"].versions) == 1 and len(train.versions) == 3  # the crops as cut, and cells.outline_copies=2
    assert np.array_equal(train.images, plain.datasets["train"].images) and train.labels == plain.datasets["train"].labels
    radius = [np.sqrt((~(v == fill).all(-1)).sum((1, 2)) / np.pi) for v in train.versions]
    for copy, r in zip(train.versions[1:], radius[1:]):
        change = r - radius[0]
        assert (change < -0.5).mean() > 0.2 and (change > 0.5).mean() > 0.2  # outlines drawn in, and out
        assert np.abs(change).mean() < 3  # the same cells, not others
    for a, b in zip(train.versions, again.datasets["train"].versions):
        assert np.array_equal(a, b)  # recomputed in a fresh cache: the same draws
    for split in ("val", "test"):
        assert len(moved.datasets[split].versions) == 1 and np.array_equal(moved.datasets[split].images, plain.datasets[split].images)
    i = next(i for i in range(len(train)) if len({train.versions[k][i].tobytes() for k in range(3)}) == 3)
    train.transform = torch.as_tensor
    draws = [train[i][0].permute(1, 2, 0).numpy() for _ in range(40)]
    assert {next(k for k, v in enumerate(train.versions) if np.array_equal(v[i], d)) for d in draws} == {0, 1, 2}


def test_outline_copies_can_move_the_cut_and_the_stain_fit_together_alone_or_apart(cell_module):
    """cells.outline_jitter_moves: with "cut" the copies are cut along moved outlines and the stain transfer
    stays fitted on the detected ones, so a cell's pixels keep their colours; "cut and stain fit" recolours them
    along the same draw; "cut and stain fit apart" cuts along the same draw and recolours along another."""
    from leukoscope.cells.cache import crop_config

    moves = ("cut", "cut and stain fit", "cut and stain fit apart")
    modules = {m: cell_module(cache, "cells.outline_jitter=2.5", f"cells.outline_jitter_moves={m}") for cache, m in zip("abc", moves)}
    fill = crop_config(modules["cut"].cfg.cells).fill
    as_cut = modules["cut"].datasets["train"].versions[0]
    copies = {m: dm.datasets["train"].versions[1] for m, dm in modules.items()}
    cut = {m: ~(copy == fill).all(-1) for m, copy in copies.items()}
    assert all(np.array_equal(cut[m], cut["cut"]) for m in moves)  # one draw of the cut in every mode
    assert not np.array_equal(cut["cut"], ~(as_cut == fill).all(-1))  # ... and it moved the outlines
    inside = np.stack([cv2.erode(c.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0 for c in cut["cut"] & ~(as_cut == fill).all(-1)])

    def change(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.abs(a.astype(int) - b)[inside].mean())

    recoloured = {m: change(copy, as_cut) for m, copy in copies.items()}
    apart = change(copies["cut and stain fit apart"], copies["cut and stain fit"])
    assert recoloured["cut"] < 0.5 and recoloured["cut and stain fit"] > 1.5 and recoloured["cut and stain fit apart"] > 1.5, recoloured
    assert apart > 1.5, apart  # recoloured along another draw than the cut's
    # measured: 0.001, 4.4 and 5.3 grey levels; 7.2 between the copies recoloured along the same draw and another


def test_blurred_training_crops_keep_the_outline_around_the_cell(cell_module):
    """Every pixel around a training crop's cell holds the suppression constant after the blur, as in a blurred field's crops."""
    from leukoscope.cells.cache import crop_config

    blur_alone = ["augment.blur=1.0", "augment.hflip=false", "augment.vflip=false", "augment.rot90=false"]
    blur_alone += [f"augment.{jitter}=0" for jitter in ("brightness", "contrast", "saturation", "hue")]
    dm = cell_module("a", *blur_alone)
    train, fill = dm.datasets["train"], crop_config(dm.cfg.cells).fill
    crop = torch.from_numpy(train.images[0]).permute(2, 0, 1)
    outside = (crop == fill).all(dim=0)
    blurred = train.transform(crop)
    assert outside.any() and (blurred[:, outside] == fill).all()
    assert not torch.equal(blurred[:, ~outside], crop[:, ~outside])


def test_an_item_of_two_views_is_two_independent_draws_of_the_augmentation():
    """What train.consistency compares: the same crop augmented twice, stacked, with its one label."""
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    transform = build_augment(AugmentConfig())
    views, label = ArrayDataset(images, [0, 1, 2], ["a", "b", "c"], transform, views=2)[1]
    assert views.shape == (2, 3, 32, 32) and label == 1
    assert not torch.equal(views[0], views[1])
    single, _ = ArrayDataset(images, [0, 1, 2], ["a", "b", "c"], transform)[1]
    assert single.shape == (3, 32, 32)


def test_a_spawned_data_worker_sees_the_blur_warmup_change():
    crop = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    still = dict(hflip=False, vflip=False, rot90=False, affine_degrees=0, affine_translate=0, affine_scale=[1.0, 1.0], brightness=0, contrast=0, saturation=0, hue=0)
    transform = build_augment(AugmentConfig(**still, blur=1.0, blur_sigma=[2.0, 2.0]))
    ds = ArrayDataset(crop, [0] * 8, ["field.png"] * 8, transform)
    loader = data_loader(ds, batch_size=4, workers=1)
    assert loader.multiprocessing_context.get_start_method() == "spawn"

    def blurred_share() -> float:
        out = torch.cat([batch for batch, _ in loader]).permute(0, 2, 3, 1).numpy()
        return float(np.mean([not np.array_equal(a, b) for a, b in zip(out, crop)]))

    assert blurred_share() == 1.0
    assert set_blur_strength(ds.transform, 0.0) == 1
    assert blurred_share() == 0.0


def pickled_for_a_worker(ds: ArrayDataset) -> bytes:
    """`ds` as a spawned loader worker receives it (multiprocessing's pickler, with torch's reductions)."""
    from multiprocessing.reduction import ForkingPickler

    return bytes(ForkingPickler.dumps(ds))


def test_a_spawned_data_worker_maps_the_images_instead_of_receiving_a_copy():
    images = np.random.default_rng(0).integers(0, 256, (400, 32, 32, 3), dtype=np.uint8)
    moved = np.ascontiguousarray(images[:, ::-1])
    ds = ArrayDataset(images, list(range(400)), ["field.png"] * 400, torch.nn.Identity(), alternatives=[moved])
    sent = pickled_for_a_worker(ds)
    assert len(sent) < images.nbytes / 100  # handles to shared memory, not 2 x 1.2 MB of pixels
    assert not np.shares_memory(ds.images, images) and not np.shares_memory(ds.versions[1], moved)  # this process reads the shared copy too
    assert np.array_equal(ds.images, images) and np.array_equal(ds.versions[1], moved)
    received = pickle.loads(sent)
    assert np.array_equal(received.images, images) and np.array_equal(received.versions[1], moved) and received.labels == ds.labels
    # a real spawned worker hands back every crop, one version or the other, in order
    served = torch.cat([batch for batch, _ in data_loader(ds, batch_size=100, workers=1)]).permute(0, 2, 3, 1).numpy()
    assert all(np.array_equal(s, a) or np.array_equal(s, b) for s, a, b in zip(served, images, moved))
    where = [v.ctypes.data for v in ds.versions]
    assert len(pickled_for_a_worker(ds)) == len(sent) and [v.ctypes.data for v in ds.versions] == where  # moved once, not for each worker


def test_images_too_large_for_shared_memory_go_to_the_worker_as_a_copy(monkeypatch, capsys):
    images = np.random.default_rng(1).integers(0, 256, (100, 32, 32, 3), dtype=np.uint8)
    ds = ArrayDataset(images, [0] * 100, ["field.png"] * 100, torch.nn.Identity())

    def no_space(self: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("unable to write to file </torch_1_2_3>: No space left on device (28)")

    monkeypatch.setattr(torch.Tensor, "share_memory_", no_space)
    sent = pickled_for_a_worker(ds)
    assert len(sent) > images.nbytes
    assert "0.3 MiB of images could not go to shared memory (unable to write to file" in capsys.readouterr().out
    received = pickle.loads(sent)
    assert np.array_equal(received.images, images) and received.views == 1
    pickled_for_a_worker(ds)
    assert capsys.readouterr().out == ""  # said once
