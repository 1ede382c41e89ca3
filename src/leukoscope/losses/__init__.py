"""Losses: Focal Loss against class imbalance, cross-entropy with label smoothing, class weights, and
a benign-vs-malignant term that can be added to either."""

from leukoscope.losses.malignancy import MalignancyLoss, WithMalignancy
from leukoscope.losses.build import build_loss
from leukoscope.losses.focal import FocalLoss, class_weights

__all__ = ["MalignancyLoss", "WithMalignancy", "FocalLoss", "build_loss", "class_weights"]
