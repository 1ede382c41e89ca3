import numpy as np
import torch

from leukoscope.engine.data import SmearDataModule


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
