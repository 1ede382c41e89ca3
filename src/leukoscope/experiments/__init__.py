"""Experiments: what trains many models (k-fold cross-validation, the background-only probe)."""
