"""Losses: Focal Loss against class imbalance, cross-entropy with label smoothing, class weights."""

from leukoscope.losses.focal import FocalLoss, build_loss, class_weights

__all__ = ["FocalLoss", "build_loss", "class_weights"]
