"""The Lightning module: model + loss + optimiser + schedule + torchmetrics."""

from __future__ import annotations

import math

import lightning as L
import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from leukoscope.config import TrainConfig
from leukoscope.losses.consistency import jensen_shannon
from leukoscope.scoring.calls import call_classes


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    """LR multiplier: linear warm-up, then cosine decay to zero."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


class ClassifierModule(L.LightningModule):
    def __init__(
        self, model: nn.Module, loss: nn.Module, train_cfg: TrainConfig, num_classes: int, benign_index: int | None = None, call_rule: str = "argmax"
    ) -> None:
        super().__init__()
        self.model, self.loss, self.cfg = model, loss, train_cfg
        self.benign_index, self.call_rule = benign_index, call_rule
        if train_cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_f1 = MulticlassF1Score(num_classes, average="macro")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _calls(self, logits: torch.Tensor) -> torch.Tensor:
        """The called classes by the run's call rule, which validation's accuracy and F1 (and so the checkpoint) judge."""
        if self.call_rule == "argmax":
            return logits.argmax(1)
        probs = torch.softmax(logits.detach().float(), 1).cpu().numpy()
        return torch.from_numpy(call_classes(probs, self.benign_index, self.call_rule)).to(logits.device)

    def _inputs(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.cfg.channels_last else x

    def training_step(self, batch: tuple, batch_idx: int) -> torch.Tensor:
        x, y = batch
        views = x.shape[1] if x.dim() == 5 else 1  # (N, views, C, H, W): each item augmented `views` times
        if views > 1:
            x, y = x.flatten(0, 1), y.repeat_interleave(views)
        logits = self.model(self._inputs(x))
        loss = self.loss(logits, y)
        if views > 1:
            per_item = logits.unflatten(0, (-1, views))
            agreement = jensen_shannon(per_item[:, 0], per_item[:, 1])
            self.log("train_consistency", agreement, on_step=False, on_epoch=True, batch_size=len(per_item))
            loss = loss + self.cfg.consistency * agreement
        self.train_acc(self._calls(logits), y)
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(y))
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def validation_step(self, batch: tuple, batch_idx: int) -> None:
        x, y = batch
        logits = self.model(self._inputs(x))
        called = self._calls(logits)
        self.val_acc(called, y)
        self.val_f1(called, y)
        self.log("val_loss", self.loss(logits, y), prog_bar=True, on_epoch=True, sync_dist=True, batch_size=len(y))
        self.log("val_acc", self.val_acc, prog_bar=True, on_epoch=True, batch_size=len(y))
        self.log("val_f1", self.val_f1, prog_bar=True, on_epoch=True, batch_size=len(y))

    def configure_optimizers(self) -> dict:
        params = [p for p in self.model.parameters() if p.requires_grad]
        cfg = self.cfg
        if cfg.optimizer == "sgd":
            opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=True)
        else:
            opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        if cfg.schedule == "none":
            return {"optimizer": opt}
        total = max(1, int(self.trainer.estimated_stepping_batches))
        if cfg.schedule == "onecycle":
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total)
        else:
            warmup = int(total * cfg.warmup_epochs / max(1, cfg.max_epochs))
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, warmup, total))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
