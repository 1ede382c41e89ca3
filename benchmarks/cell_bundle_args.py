"""What the benchmarks read the same way: bundles, and one split of a splits file."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from leukoscope.data.images import read_rgb
from leukoscope.evaluation.evaluate import labelled_paths
from leukoscope.scoring.bundle import Bundle, load_bundle

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "taleqani-all"


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


def bundles_and_fields_parser(description: str) -> argparse.ArgumentParser:
    """BUNDLE [BUNDLE ...] --splits SPLITS [--split test] [--data DATA] [--every N]: several bundles on one split's fields."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("bundles", nargs="+")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--splits", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--every", type=int, default=1, help="keep every Nth field (a quicker look)")
    return parser


def split_fields(args: argparse.Namespace) -> tuple[list[str], list[np.ndarray]]:
    """The true labels and images of every `args.every`-th field of the split, read once for all the bundles."""
    paths, truth = labelled_paths(load_bundle(args.bundles[0]), args.data, args.splits, args.split)
    images = [read_rgb(p) for p in paths[:: args.every]]
    print(f"{len(images)} {args.split} fields")
    return truth[:: args.every], images
