"""What a cell bundle's focus floor sends to review, and what the calls it keeps are worth, sharp and blurred.

Usage: python benchmarks/focus_gate.py BUNDLE [BUNDLE ...] --splits SPLITS [--data DATA] [--split test] [--every N]
       [--quantile Q] [--write]

The floor is fitted as training fits it (`eval.focus_quantile` of the training fields' fine detail,
cells/focus.py; `--quantile` replaces it), on the training split's fields, every one. Each test field is
then blurred (Gaussian σ 0.5-2 px), recompressed (JPEG 30), re-coloured (hue -30°) or magnified ×2, and
predicted as `predict` would. Printed per bundle and condition: the fields' median fine detail, the
share sent to review for too little of it, 4-class accuracy and benign specificity on every field and
on the fields the floor keeps. `--write` stores the fitted floor in each bundle, as training now does,
so that `evaluate` and `domain_shift.py` apply it to a bundle trained before the floor existed.
"""

from __future__ import annotations

import time
from functools import partial

import numpy as np
from cell_bundle_args import bundles_and_fields_parser, load_cell_bundle, split_fields

from leukoscope.config import BENIGN_CLASS, EvalConfig
from leukoscope.data.images import read_rgb
from leukoscope.data.shifts import blur, jpeg, magnify, rotate_hue
from leukoscope.evaluation.evaluate import labelled_paths
from leukoscope.inference.predictor import Predictor
from leukoscope.progress import progress_bar
from leukoscope.scoring.bundle import update_bundle_meta
from leukoscope.scoring.focus import FocusFloor

CONDITIONS = {
    "none": lambda x: x,
    "blur sigma 0.5": partial(blur, sigma=0.5),
    "blur sigma 1": partial(blur, sigma=1.0),
    "blur sigma 1.5": partial(blur, sigma=1.5),
    "blur sigma 2": partial(blur, sigma=2.0),
    "JPEG quality 30": partial(jpeg, quality=30),
    "hue -30°": partial(rotate_hue, degrees=-30),
    "magnification x2": partial(magnify, factor=2.0),
}


def fit_floor(predictor: Predictor, paths: list[str], quantile: float) -> FocusFloor | None:
    """The floor training would fit: the quantile of the training fields' fine detail, on their model inputs."""
    bar = progress_bar(len(paths), "training fields")
    units = []
    for p in paths:
        units.append(predictor.units(read_rgb(p)))
        bar.update(1)
    bar.close()
    return FocusFloor.fit(units, quantile, predictor.crop_config.fill)


def percent(values: np.ndarray) -> str:
    return f"{100 * values.mean():5.1f} %" if len(values) else "    – "


def run(bundle_path: str, data: str, splits: str, truth: list[str], images: list[np.ndarray], quantile: float | None, write: bool) -> None:
    bundle = load_cell_bundle(bundle_path)
    predictor = Predictor(bundle)
    q = quantile if quantile is not None else bundle.meta["config"].get("eval", {}).get("focus_quantile", EvalConfig.focus_quantile)
    train_paths, _ = labelled_paths(bundle, data, splits, "train")
    floor = fit_floor(predictor, train_paths, q)
    if floor is None:
        raise SystemExit(f"{bundle_path}: no training field's cells hold enough pixels to measure their detail")
    print(f"  floor: {floor.floor:.4f}, the {100 * q:g} % quantile of {len(train_paths)} training fields' fine detail")
    if write:
        update_bundle_meta(bundle.path, abstain={**bundle.meta["abstain"], "focus": floor.to_json()})
        print(f"  written to {bundle.path / 'bundle.json'}")
    bundle.focus = floor
    y = np.array([bundle.classes.index(t) for t in truth])
    benign = bundle.classes.index(BENIGN_CLASS)
    for name, shift in CONDITIONS.items():
        start = time.perf_counter()
        pred = predictor.predict_rgbs([shift(rgb) for rgb in images])
        blurred = pred.out_of_focus
        kept = ~blurred
        right = pred.labels == y
        spec = (pred.labels == benign)[y == benign]
        spec_kept = (pred.labels == benign)[(y == benign) & kept]
        print(
            f"  {name:18s} detail {np.nanmedian(pred.detail):.3f}  out of focus {percent(blurred)}  "
            f"acc {percent(right)} (kept {percent(right[kept])})  spec {percent(spec)} (kept {percent(spec_kept)})  "
            f"({time.perf_counter() - start:.0f} s)",
            flush=True,
        )


def main() -> None:
    parser = bundles_and_fields_parser(__doc__.splitlines()[0])
    parser.add_argument("--quantile", type=float, default=None, help="of the training fields' fine detail (default: the bundle's eval.focus_quantile)")
    parser.add_argument("--write", action="store_true", help="store the fitted floor in each bundle")
    args = parser.parse_args()
    truth, images = split_fields(args)
    for b in args.bundles:
        print(b)
        run(b, args.data, args.splits, list(truth), images, args.quantile, args.write)


if __name__ == "__main__":
    main()
