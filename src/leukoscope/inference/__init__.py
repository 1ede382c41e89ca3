"""Inference: batched model runs, abstention and out-of-distribution scores, predictor, export, service."""
