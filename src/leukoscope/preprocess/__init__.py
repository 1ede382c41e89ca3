"""Preprocessing: the paper's chain (resize, LAB + CLAHE, denoise, normalise), cached, plus augmentation."""

from leukoscope.preprocess.pipeline import Pipeline

__all__ = ["Pipeline"]
