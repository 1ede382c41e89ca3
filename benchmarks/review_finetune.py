"""What do 100 and 300 reviewed cells buy? A lab's adaptation loop, simulated on the development data.

Usage: python benchmarks/review_finetune.py [DATA] --out DIR [--stage prepare|base|finetune|all] [--cells 100 300]

1. prepare: the grouped test split (100 fields per class) and validation as in configs/cells.yaml;
   30 % of the training fields' groups, stratified by class, are set aside as "the lab's own slides"
   (held_out.json); the base model never sees them.
2. base: `leukoscope train --config configs/cells.yaml` on the rest.
3. finetune: for each N, fields of the held-out portion are taken in a shuffled class-balanced
   order until they hold N detected cells. A simulated reviewer confirms every cell with its
   field's label (review.csv, in the format the page exports). The model is fine-tuned from the
   base bundle (`train.init_from=BASE data.cell_labels=review.csv`) two ways: on the reviewed cells
   alone (a lab without the original training data), and on them together with the base model's
   own training fields (rehearsal). Every model is scored on the same test split. The table goes to
   stdout and DIR/results.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "taleqani-all"
HELD_OUT_FRACTION = 0.3
PROTOCOLS = {  # name -> (train on the base model's training fields too, overrides)
    "alone": (False, ["train.max_epochs=6", "train.lr=0.0005", "train.warmup_epochs=0", "data.batch_size=32"]),
    "with base fields": (True, ["train.max_epochs=3", "train.lr=0.0005", "train.warmup_epochs=0"]),
}


def leukoscope(*args: str) -> float:
    """Run one CLI command; its wall time in seconds."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "leukoscope.cli", *args], check=True)
    return time.perf_counter() - started


def prepare(data: Path, out: Path, seed: int = 0) -> None:
    from leukoscope.data.manifest import build_manifest
    from leukoscope.data.split import make_splits

    manifest = build_manifest(data, variant="Original")
    splits = make_splits(manifest, test_per_class=100, val_fraction=0.1, seed=seed, variant="Original")
    by_rel = {manifest.relative_path(r): r for r in manifest.rows}
    groups: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))  # class -> group -> paths
    for rel in splits["splits"]["train"]:
        groups[by_rel[rel].label][by_rel[rel].group].append(rel)
    rng = np.random.default_rng(seed)
    held: list[str] = []
    for label in sorted(groups):
        names = sorted(groups[label])
        rng.shuffle(names)
        total, taken = sum(len(v) for v in groups[label].values()), 0
        for g in names:
            if taken >= HELD_OUT_FRACTION * total:
                break
            held += groups[label][g]
            taken += len(groups[label][g])
    held_set = set(held)
    base = json.loads(json.dumps(splits))
    base["splits"]["train"] = [p for p in splits["splits"]["train"] if p not in held_set]
    base["counts"]["train"] = {c: sum(by_rel[p].label == c for p in base["splits"]["train"]) for c in splits["classes"]}
    out.mkdir(parents=True, exist_ok=True)
    (out / "splits-base.json").write_text(json.dumps(base, indent=1))
    (out / "held_out.json").write_text(json.dumps({"seed": seed, "fields": sorted(held), "labels": {p: by_rel[p].label for p in held}}, indent=1))
    print(f"train {len(base['splits']['train'])} fields, held out as the lab's slides {len(held)}, val {len(splits['splits']['val'])}, test {len(splits['splits']['test'])}")


def simulated_review(
    data: Path, out: Path, n_cells: int, with_base: bool, seed: int = 0, into: Path | None = None, pixel_scale: float | None = None, training_scale: float = 1.0
) -> tuple[Path, Path, int]:
    """review.csv confirming every cell of held-out fields until n_cells, and the splits that train on
    those fields (and the base model's training fields, `with_base`); written into `into` (default: `out`).
    The cells are found at `pixel_scale` (`field_crops`'), as `leukoscope case` finds them."""
    from leukoscope.case.report import write_review
    from leukoscope.cells.cache import training_field_crops
    from leukoscope.config import load_config
    from leukoscope.io_utils import file_sha256

    held = json.loads((out / "held_out.json").read_text())
    by_class: dict[str, list[str]] = defaultdict(list)
    for p in held["fields"]:
        by_class[held["labels"][p]].append(p)
    rng = np.random.default_rng(seed)
    for paths in by_class.values():
        rng.shuffle(paths)
    order = [p for batch in zip(*[by_class[c] for c in sorted(by_class)]) for p in batch]  # class-balanced
    recipe = load_config("configs/cells.yaml")
    rows, fields = [], []
    for rel in order:
        if len(rows) >= n_cells:
            break
        path = data / "Original" / rel
        found = training_field_crops(path, recipe.cells, recipe.preprocess.max_pixels, pixel_scale, training_scale)  # the cells the fine-tune will find again
        if not found.cells:
            continue
        fields.append(rel)
        sha = file_sha256(path)
        for k, cell in enumerate(found.cells):
            x0, y0, x1, y1 = cell.box
            label = held["labels"][rel]
            rows.append({"case": "simulated", "field": Path(rel).name, "field_sha256": sha, "cell": k, "box_x0": x0, "box_y0": y0, "box_x1": x1, "box_y1": y1,
                         "model_label": "", "reviewed_label": label, "reviewer": "sim", "time": "", "pixel_scale": "" if pixel_scale is None else round(pixel_scale, 4)})  # fmt: skip
    into = into or out
    review = write_review(rows, into / f"review-{n_cells}.csv")
    splits = json.loads((out / "splits-base.json").read_text())
    splits["splits"]["train"] = sorted(fields + (splits["splits"]["train"] if with_base else []))
    splits["counts"]["train"] = {}  # recounted by train from the data
    splits_path = into / f"splits-review-{n_cells}{'-with-base' if with_base else ''}.json"
    splits_path.write_text(json.dumps(splits, indent=1))
    return review, splits_path, len(rows)


def test_figures(bundle: Path) -> dict[str, float]:
    metrics = json.loads((bundle / "bundle.json").read_text())["metrics"]["test"]
    two_way = metrics["benign_vs_malignant"]
    return {
        "accuracy": metrics["accuracy"],
        "accuracy_ci": metrics["accuracy_ci"],
        "benign_specificity": two_way["specificity"],
        "malignant_sensitivity": two_way["sensitivity"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default=str(DEFAULT_DATA))
    parser.add_argument("--out", required=True)
    parser.add_argument("--stage", choices=["prepare", "base", "finetune", "all"], default="all")
    parser.add_argument("--cells", type=int, nargs="+", default=[100, 300])
    args = parser.parse_args()
    data, out = Path(args.data), Path(args.out)
    if args.stage in ("prepare", "all"):
        prepare(data, out)
    if args.stage in ("base", "all"):
        seconds = leukoscope("train", "--config", "configs/cells.yaml", "--data", str(data), "--splits", str(out / "splits-base.json"), "--out", str(out / "base"))
        print(f"base trained in {seconds:.0f} s")
    if args.stage in ("finetune", "all"):
        results = {"base (no review)": {**test_figures(out / "base" / "bundle"), "reviewed_cells": 0}}
        for protocol, (with_base, overrides) in PROTOCOLS.items():
            for n in args.cells:
                review, splits, n_rows = simulated_review(data, out, n, with_base)
                run = out / f"finetune-{n}-{protocol.replace(' ', '-')}"
                seconds = leukoscope(
                    "train", "--config", "configs/cells.yaml", "--data", str(data), "--splits", str(splits), "--out", str(run),
                    f"train.init_from={out / 'base' / 'bundle'}", f"data.cell_labels={review}", *overrides,
                )  # fmt: skip
                results[f"+{n} reviewed, {protocol}"] = {**test_figures(run / "bundle"), "reviewed_cells": n_rows, "seconds": round(seconds)}
        (out / "results.json").write_text(json.dumps(results, indent=1))
        print(f"{'model':34} {'cells':>6} {'4-class (95 % CI)':>20} {'benign spec':>12} {'malig sens':>11} {'fit s':>6}")
        for name, r in results.items():
            ci = f"{100 * r['accuracy']:.1f} ({100 * r['accuracy_ci'][0]:.1f}-{100 * r['accuracy_ci'][1]:.1f})"
            print(f"{name:34} {r['reviewed_cells']:6d} {ci:>20} {100 * r['benign_specificity']:11.1f}% {100 * r['malignant_sensitivity']:10.1f}% {r.get('seconds', ''):>6}")


if __name__ == "__main__":
    main()
