"""Explanations: Grad-CAM on the last convolutional stage and MHSA attention maps, as overlays."""
