"""Evaluation: metrics with confidence intervals, calibration, paired comparison, reports."""
