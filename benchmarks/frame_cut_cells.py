"""How a cell model reads the cells the frame cuts: a partial cell against a whole one, per class.

Usage: python benchmarks/frame_cut_cells.py BUNDLE [--data DATA] [--split val test]

The detector keeps cells cut by the image's frame (cells/detect.py): they show part of their morphology,
and dropping them removed their whole neighbours too. This asks what the model makes of them. For each
split of the run that trained BUNDLE (its recorded split file), every field's cells are found again as
training found them, a cell whose box touches the frame counts as cut, and the cells' calibrated
probabilities (the bundle's temperature, its eval.tta views) are printed per true class: how many cells,
the share cut, and the mean p(Benign) and the share above one half of whole and of cut cells. Where cut
cells of benign fields reach p(Benign) > 0.5 far less often than whole ones, a benign field's cut cells pull
its call towards malignant, whatever the field's own cells show.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from leukoscope.cells.cache import training_field_crops
from leukoscope.config import CellsConfig
from leukoscope.engine.ensemble import bundle_run_data
from leukoscope.errors import LeukoscopeError
from leukoscope.scoring.bundle import load_bundle
from leukoscope.scoring.calibration import softmax
from leukoscope.scoring.runner import run_model


def cut_by_frame(job: tuple[str, CellsConfig, int]) -> list[bool]:
    """Whether each cell of one field, as training found it, touches the image's frame."""
    path, cells, max_pixels = job
    found = training_field_crops(path, cells, max_pixels)
    return [found.cut_by_frame(j) for j in range(len(found.cells))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--data", help="the data root, where it moved since the bundle was trained")
    parser.add_argument("--split", nargs="+", default=["val", "test"], choices=["train", "val", "test"])
    args = parser.parse_args()
    bundle = load_bundle(args.bundle)
    if not bundle.cell_level:
        raise SystemExit(f"{args.bundle}: a whole-field bundle sees no cells")
    try:
        cfg, dm = bundle_run_data(bundle, args.data)
    except LeukoscopeError as exc:
        raise SystemExit(str(exc)) from None
    if "Benign" not in dm.classes:
        raise SystemExit(f"{args.bundle}: no Benign class to read p(Benign) of ({', '.join(dm.classes)})")
    mean, std = dm.pipeline.mean_std()
    bf16 = str(bundle.meta.get("training", {}).get("precision", "")).startswith("bf16")
    for split in args.split:
        ds = dm.datasets[split]
        crops_of: dict[str, list[int]] = {}  # each field's crops, fields in first-seen order
        for i, path in enumerate(ds.paths):
            crops_of.setdefault(path, []).append(i)
        fields = list(crops_of)
        with ProcessPoolExecutor(2) as pool:
            flags = dict(zip(fields, pool.map(cut_by_frame, [(f, cfg.cells, cfg.preprocess.max_pixels) for f in fields], chunksize=32)))
        if moved := [f for f in fields if len(flags[f]) != len(crops_of[f])]:
            raise SystemExit(f"{moved[0]}: {len(flags[moved[0]])} cells found again, {len(crops_of[moved[0]])} crops in the run's cache")
        cut = np.concatenate([np.array(flags[f], bool) for f in fields])
        order = np.concatenate([crops_of[f] for f in fields])
        logits, _ = run_model(bundle.model, ds.images[order], mean, std, bf16=bf16, tta=cfg.eval.tta)
        p_benign = softmax(logits, bundle.temperature)[:, dm.classes.index("Benign")]
        labels = np.asarray(ds.labels)[order]
        print(f"{split}: {len(fields)} fields, {len(cut)} cells, {100 * cut.mean():.1f} % cut by the frame")
        for k, name in enumerate(dm.classes):
            mine = labels == k
            whole, partial = mine & ~cut, mine & cut
            print(
                f"  {name:7} {int(mine.sum()):6d} cells, {100 * partial.sum() / max(mine.sum(), 1):4.1f} % cut   mean p(Benign) whole "
                f"{p_benign[whole].mean():.3f}, cut {p_benign[partial].mean():.3f}   p(Benign) > 0.5: whole {100 * (p_benign[whole] > 0.5).mean():.1f} %, "
                f"cut {100 * (p_benign[partial] > 0.5).mean():.1f} %"
            )


if __name__ == "__main__":
    main()
