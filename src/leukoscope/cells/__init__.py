"""The cell-level path: classical leukocyte detection and scale-normalised crops."""
