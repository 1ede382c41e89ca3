"""Field labels on cells: a leukemic field's label also covers its normal cells.

Every training crop inherits its field's label. A benign field holds only benign cells, but a
leukemic field also holds lymphocytes and other normal leukocytes, labelled malignant. Trained on
them all, the cell model calls a normal-looking cell half malignant: on their own, 43-46 % of benign
fields' cells are called malignant (BENCHMARKS.md, issue 17, twenty-sixth session), where issue 17
asks at most 10 % of another laboratory's lymphocytes. This wrapper leaves out of the loss the share of
each batch's malignant-labelled crops that the model holds most benign: the small-loss criterion of
co-teaching (Han et al. 2018), applied to the one side whose labels are noisy, and brought in over the
first epochs, while the model learns the clean majority.
"""

from __future__ import annotations

import torch
from torch import nn


def keep_mask(logits: torch.Tensor, target: torch.Tensor, benign_index: int, drop: float) -> torch.Tensor:
    """True for every item but the `drop` share (rounded down) of malignant-labelled items with the highest p(Benign)."""
    malignant = (target != benign_index).nonzero().squeeze(1)
    n_drop = int(drop * len(malignant))
    keep = torch.ones_like(target, dtype=torch.bool)
    if n_drop:
        p_benign = torch.softmax(logits.detach().float(), 1)[malignant, benign_index]
        keep[malignant[p_benign.topk(n_drop).indices]] = False
    return keep


class MalignantCellDrop(nn.Module):
    """`loss` on the kept items of a training batch (`keep_mask`); in eval mode, and before `set_epoch`, on every item."""

    def __init__(self, loss: nn.Module, benign_index: int, drop: float, ramp_epochs: int) -> None:
        super().__init__()
        if not 0 <= drop < 1:
            raise ValueError(f"a share of malignant crops to leave out lies in [0, 1), got {drop}")
        self.loss, self.benign_index, self.drop, self.ramp_epochs = loss, benign_index, drop, ramp_epochs
        self.drop_now = 0.0

    def set_epoch(self, epoch: int) -> None:
        """The share left out in this epoch: none in the first, rising linearly to `drop` at `ramp_epochs`."""
        self.drop_now = self.drop * min(1.0, epoch / self.ramp_epochs) if self.ramp_epochs else self.drop

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.training and self.drop_now:
            keep = keep_mask(logits, target, self.benign_index, self.drop_now)
            logits, target = logits[keep], target[keep]
        return self.loss(logits, target)
