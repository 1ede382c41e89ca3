"""Scoring: network outputs to calibrated, flagged predictions, their metrics, and the bundle that carries it all.

Both training (which writes bundles) and inference (which reads them) build on this layer.
"""
