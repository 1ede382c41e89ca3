"""What the cell benchmarks read the same way: a cell-level bundle and one split of a splits file."""

from __future__ import annotations

import argparse

from leukoscope.scoring.bundle import Bundle, load_bundle


def bundle_and_split_parser(description: str) -> argparse.ArgumentParser:
    """BUNDLE --splits SPLITS [--split test] [--data DATA]."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("bundle")
    parser.add_argument("--splits", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--data", default="../shared/data/taleqani-all")
    return parser


def load_cell_bundle(path: str) -> Bundle:
    """The bundle; a whole-field one (no crops, no cells to pool) ends the benchmark with one line."""
    bundle = load_bundle(path)
    if not bundle.cell_level:
        raise SystemExit(f"{path}: a whole-field bundle sees no cells")
    return bundle
