"""How far do 16 global image statistics get, with no cell in sight? A measure of the shortcut.

Usage: python benchmarks/global_stats_baseline.py [DATA] [--splits FILE]
Per image: LAB percentiles (10/50/90), LAB standard deviations and the log variance of the Laplacian
(focus), of the raw and of the preprocessed field; a gradient-boosting classifier trained on the
training split, scored on the test split (grouped 100 per class unless --splits is given).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from leukoscope.data.images import read_rgb
from leukoscope.data.manifest import build_manifest
from leukoscope.data.split import load_splits, make_splits, rows_for_split
from leukoscope.preprocess import Pipeline
from leukoscope.scoring.intervals import wilson


def features(rows: list, pipeline: Pipeline | None) -> np.ndarray:
    out = []
    for r in rows:
        img = read_rgb(r.path)
        if pipeline is not None:
            img = pipeline(img)
        lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(float)
        lap = cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(float), cv2.CV_64F).var()
        out.append(np.r_[np.percentile(lab, [10, 50, 90], axis=0).ravel(), lab.std(0), np.log1p(lap)])
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "taleqani-all"))
    parser.add_argument("--splits")
    args = parser.parse_args()
    manifest = build_manifest(args.data)
    splits = load_splits(args.splits) if args.splits else make_splits(manifest, test_per_class=100, val_fraction=0.1, seed=0)
    train, test = rows_for_split(manifest, splits, "train"), rows_for_split(manifest, splits, "test")
    y_train, y_test = np.array([r.label for r in train]), np.array([r.label for r in test])
    for name, pipeline in (("raw fields", None), ("preprocessed fields", Pipeline())):
        clf = HistGradientBoostingClassifier(random_state=0).fit(features(train, pipeline), y_train)
        correct = int((clf.predict(features(test, pipeline)) == y_test).sum())
        lo, hi = wilson(correct, len(y_test))
        print(f"{name:20s}: test accuracy {100 * correct / len(y_test):.2f} % (95 % CI {100 * lo:.1f}-{100 * hi:.1f}, n={len(y_test)})")


if __name__ == "__main__":
    main()
