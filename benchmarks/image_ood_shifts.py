"""Which whole-image changes does the image-statistics OOD check catch, and how often does it cry wolf?

Usage: python benchmarks/image_ood_shifts.py [DATA] [--splits FILE] [--n 40] [--bundle RUN/bundle [--refit]]
Fits the check on the training split's model inputs (as `train` does: preprocessed fields, or a
cell-level bundle's leukocyte crops) for both statistic sets (RGB/grey, the current one, and LAB,
what older bundles store) and prints the share of fields flagged (a field of crops is flagged when
most of its crops are): the validation and test splits (should be ~0), and --n test fields altered
before preprocessing (blank, black and noise frames, hue rotations, grey, blur, under-exposure,
inverted colours). With --bundle, also the share that bundle's `predict` flags out-of-distribution
by any of its checks (no leukocyte found, image statistics, Mahalanobis distance of the features)
and the share it abstains on; --refit gives it the current statistics first (in memory only).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np

from leukoscope.data.images import read_rgb
from leukoscope.data.manifest import build_manifest
from leukoscope.data.shifts import blur, grey, rotate_hue
from leukoscope.data.split import load_splits, make_splits, rows_for_split
from leukoscope.inference.predictor import Predictor
from leukoscope.preprocess import Pipeline
from leukoscope.scoring.bundle import load_bundle
from leukoscope.scoring.ood import IMAGE_STATS, LAB_IMAGE_STATS, ImageStatsOOD

SHIFTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "blank (white)": lambda x: np.full_like(x, 255),
    "black": np.zeros_like,
    "uniform noise": lambda x: np.random.default_rng(x.size).integers(0, 256, x.shape, dtype=np.uint8),
    "hue -60 deg": lambda x: rotate_hue(x, -60),
    "hue -30 deg": lambda x: rotate_hue(x, -30),
    "hue +30 deg": lambda x: rotate_hue(x, 30),
    "hue +60 deg": lambda x: rotate_hue(x, 60),
    "hue +120 deg": lambda x: rotate_hue(x, 120),
    "grey": grey,
    "blur (sigma 3 px)": lambda x: blur(x, 3),
    "under-exposed (x0.5)": lambda x: (x // 2).astype(np.uint8),
    "inverted": lambda x: 255 - x,
}


def fields_flagged(check: ImageStatsOOD, units: list[np.ndarray]) -> float:
    """Share of fields whose units (the field, or its crops) are mostly outside the check's ranges."""
    return float(np.mean([len(u) > 0 and check.outside(u).mean() > 0.5 for u in units]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "taleqani-all"))
    parser.add_argument("--splits")
    parser.add_argument("--n", type=int, default=40, help="test fields altered per change")
    parser.add_argument("--bundle", help="also report this bundle's own out-of-distribution and abstain flags")
    parser.add_argument("--refit", action="store_true", help="refit the bundle's image statistics with the current set first")
    args = parser.parse_args()
    manifest = build_manifest(args.data)
    splits = load_splits(args.splits) if args.splits else make_splits(manifest, test_per_class=100, val_fraction=0.1, seed=0)
    predictor = Predictor(load_bundle(args.bundle)) if args.bundle else None
    pipeline = Pipeline()

    def units(rgb: np.ndarray) -> np.ndarray:
        return predictor.units(rgb, require_cells=False) if predictor is not None else pipeline(rgb)[None]

    rows = {name: rows_for_split(manifest, splits, name) for name in ("train", "val", "test")}
    raw = {name: [read_rgb(r.path) for r in split] for name, split in rows.items()}
    train_units = np.concatenate([units(x) for x in raw["train"]])
    altered_from = raw["test"][:: max(1, len(raw["test"]) // args.n)][: args.n]
    altered = {name: [shift(x) for x in altered_from] for name, shift in SHIFTS.items()}
    checks = {"RGB/grey": ImageStatsOOD.fit(train_units, names=IMAGE_STATS), "LAB": ImageStatsOOD.fit(train_units, names=LAB_IMAGE_STATS)}
    if predictor is not None and args.refit:
        predictor.bundle.image_ood = checks["RGB/grey"]
    header = "".join(f"{name:>10s}" for name in checks) + ("   bundle: OOD  abstain" if predictor else "")
    print(f"{'share flagged':28s}{header}")
    cases = [("validation split", raw["val"]), ("test split", raw["test"]), *altered.items()]
    for name, images in cases:
        case_units = [units(x) for x in images]
        line = f"{name + f' (n={len(images)})':28s}" + "".join(f"{100 * fields_flagged(check, case_units):9.1f}%" for check in checks.values())
        if predictor is not None:
            pred = predictor.predict_rgbs(images)
            line += f"{100 * pred.ood.mean():12.1f}%{100 * pred.abstain.mean():8.1f}%"
        print(line)


if __name__ == "__main__":
    main()
