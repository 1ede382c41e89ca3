"""Losses: Focal Loss against class imbalance, cross-entropy with label smoothing, class weights, a
benign-vs-malignant term and a subtype term beneath it, weighed together by the config."""

from leukoscope.losses.build import build_loss
from leukoscope.losses.field_labels import MalignantCellDrop
from leukoscope.losses.focal import FocalLoss, class_weights
from leukoscope.losses.malignancy import MalignancyLoss, WeightedTerms
from leukoscope.losses.subtype import SubtypeLoss

__all__ = ["MalignancyLoss", "MalignantCellDrop", "SubtypeLoss", "WeightedTerms", "FocalLoss", "build_loss", "class_weights"]
