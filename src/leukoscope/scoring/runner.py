"""Batched forward passes over preprocessed uint8 images: logits and penultimate features."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch

from leukoscope.models.base import LeukoscopeModel


def to_input(images: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...], channels_last: bool = True) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> normalised float (N, 3, H, W).

    Normalised in the images' own HWC layout, which is channels_last memory already: one conversion
    and one multiply-add over the pixels instead of a pass per arithmetic step and a final copy.
    """
    scale = 1.0 / (255.0 * torch.tensor(std, dtype=torch.float32))
    shift = -torch.tensor(mean, dtype=torch.float32) / torch.tensor(std, dtype=torch.float32)
    x = torch.addcmul(shift, torch.from_numpy(np.ascontiguousarray(images)).float(), scale).permute(0, 3, 1, 2)
    return x if channels_last else x.contiguous()


def orientations(x: torch.Tensor, channels_last: bool = True) -> list[torch.Tensor]:
    """A batch's 8 flips and rotations (N, C, H, W), each laid out as the convolutions read it fastest.

    `torch.rot90` hands back other strides than it was given: a channels_last batch's quarter turns ran
    the CPU convolutions 1.4-1.7 times slower than the batch as made (BENCHMARKS.md, issue 17, "A screening cut that
    holds on new fields, a faster finalize, and two fifths of the batches")."""
    layout = torch.channels_last if channels_last else torch.contiguous_format
    return [torch.rot90(v, k, (2, 3)).contiguous(memory_format=layout) for v in (x, x.flip(3)) for k in range(4)]


@torch.no_grad()
def run_model(
    model: LeukoscopeModel,
    images: np.ndarray,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    batch_size: int = 64,
    features: bool = False,
    bf16: bool = False,
    tta: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits (N, K) and, when asked, penultimate features (N, D). TTA averages 8 flips/rotations."""
    model.eval()
    device = next(model.parameters()).device
    logits_out, feats_out = [], []
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    for start in range(0, len(images), batch_size):
        x = to_input(images[start : start + batch_size], mean, std).to(device)
        views = orientations(x) if tta else [x]
        logit_sum, feat_sum = 0, 0
        for v in views:
            with autocast:
                f = model.forward_features(v)
                pre = model.forward_head(f, pre_logits=True) if features else None
                logits = model.forward_head(f)
            logit_sum = logit_sum + logits.float()
            if features:
                feat_sum = feat_sum + pre.float()
        logits_out.append((logit_sum / len(views)).cpu().numpy())
        if features:
            feats_out.append((feat_sum / len(views)).cpu().numpy())
    k = getattr(model, "num_classes", None)
    empty = np.zeros((0, k or 0), np.float32)
    logits_all = np.concatenate(logits_out) if logits_out else empty
    return logits_all, (np.concatenate(feats_out) if feats_out else None) if features else None
