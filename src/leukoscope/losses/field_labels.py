"""Field labels on cells: a leukemic field's label also covers its normal cells.

Every training crop inherits its field's label. A benign field holds only benign cells, but a
leukemic field also holds lymphocytes and other normal leukocytes, labelled malignant. Trained on
them all, a cell model might learn to call any normal-looking cell half malignant, where issue 17
asks that at most 10 % of another laboratory's lymphocytes be. This wrapper leaves out of the loss
the share of each batch's malignant-labelled crops that the model holds most benign: the small-loss
criterion of co-teaching (Han et al. 2018), applied to the one side whose labels are noisy, and
brought in over the first epochs, while the model learns the clean majority. Measured on the cell
recipe, benign fields' cells were called malignant as often as without it, and the 4-class accuracy
fell: the reading that fits is that those cells are hematogones, which look like blasts, not normal
cells taught malignant (BENCHMARKS.md, issue 17, twenty-seventh session).
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
