"""Model inputs: the fused normalisation equals (x / 255 - mean) / std, in the memory layout asked for."""

import numpy as np
import torch

from leukoscope.scoring.runner import orientations, to_input


def test_to_input_normalises_per_channel_in_either_layout():
    images = np.random.default_rng(0).integers(0, 256, (2, 9, 7, 3), dtype=np.uint8)
    mean, std = (0.1, 0.5, 0.9), (0.2, 0.3, 0.4)
    expected = (torch.from_numpy(images).permute(0, 3, 1, 2).double() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    fast, plain = to_input(images, mean, std), to_input(images, mean, std, channels_last=False)
    assert fast.shape == plain.shape == (2, 3, 9, 7) and fast.dtype == torch.float32
    assert fast.is_contiguous(memory_format=torch.channels_last) and plain.is_contiguous()
    torch.testing.assert_close(fast.double(), expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(plain, fast, rtol=0, atol=0)


def test_the_eight_orientations_are_the_dihedral_group_each_in_the_layout_asked_for():
    images = np.random.default_rng(1).integers(0, 256, (2, 6, 6, 3), dtype=np.uint8)
    x = to_input(images, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    for channels_last in (True, False):
        views = orientations(x, channels_last)
        layout = torch.channels_last if channels_last else torch.contiguous_format
        assert len(views) == 8 and all(v.is_contiguous(memory_format=layout) for v in views)
        distinct = {tuple(v[0, 0].flatten().tolist()) for v in views}
        assert len(distinct) == 8  # a random crop has no symmetry: no view repeats
        assert torch.equal(views[0], x) and torch.equal(views[4], x.flip(3)) and torch.equal(views[2], x.flip(2).flip(3))
