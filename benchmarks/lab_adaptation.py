"""Can a laboratory whose images the model reads badly adapt it with a few hundred of its own reviewed cells?

Usage: python benchmarks/lab_adaptation.py [DATA] --out DIR [--lab TEXT] [--cells 100 300 1000] [--protocols alone ...]
       [--pixel-size auto|field|UM] [--val-fields N]

Simulated on the development data, as the other laboratories' images cannot be had here (issue 17). DIR must
hold review_finetune.py's `prepare` and `base` stages: a base model (configs/cells.yaml) that never saw 30 % of
the training fields' groups, "the lab's own slides".
1. The lab: those held-out fields, the validation fields and the test fields are rendered as a simulated
   laboratory would record them (`leukoscope.data.shifts.OTHER_LABS`, the first whose name holds --lab: its
   stain palette, camera white balance, magnification, focus, JPEG), saved as JPEG quality 95 under
   DIR/lab-NAME/Original/; the base model's training fields are linked in unchanged (the original lab's
   slides, for the rehearsal protocol).
2. The base model is evaluated on the lab's test fields.
3. For each N, review_finetune.py's simulated review on the lab's images (every cell of held-out fields,
   class-balanced, confirmed with its field's label until N cells), and the fine-tune from the base bundle
   on the reviewed cells alone, or with the base model's training fields. The fine-tune's validation
   fields are the lab's: its temperature, abstention threshold, focus floor and out-of-distribution
   reference come from the lab's own images (244 labelled fields besides the reviewed cells, or --val-fields
   of them: a lab adopting the tool would have to label a validation set of its own, too).
4. Every model is evaluated on the lab's test fields and on the original test fields (what it forgot).
The table goes to stdout and DIR/lab-NAME/results.json (results-pixel-size-X.json with --pixel-size X).

The lab's cells are found where `leukoscope case` would find them for its review: at the pixel scale the
lab's red cells give against the base bundle's training fields (`data.pixel_size`'s default for a fine-tune),
or at `--pixel-size`, which the fine-tunes are then given too (`field`: each image as a training field's view,
as fine-tunes cut before `data.pixel_size`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

import cv2
import numpy as np
from review_finetune import DEFAULT_DATA, PROTOCOLS, leukoscope, simulated_review

from leukoscope.config import load_config
from leukoscope.data.images import read_rgb
from leukoscope.data.shifts import OTHER_LABS, OtherLab, other_lab_view
from leukoscope.engine.crop_scale import crop_scale
from leukoscope.progress import progress

SAVED_QUALITY = 95  # a lab's camera software saves JPEG; 95 is near-lossless (JPEG 60 cost a few points in domain_shift.py)


def render_lab(data: Path, out: Path, lab: OtherLab) -> Path:
    """The lab's data root: held-out, validation and test fields as the lab records them; training fields linked."""
    root = out / f"lab-{re.sub(r'[^a-z0-9]+', '-', lab.name.lower()).strip('-')}"
    splits = json.loads((out / "splits-base.json").read_text())
    held = json.loads((out / "held_out.json").read_text())["fields"]
    rendered = held + splits["splits"]["val"] + splits["splits"]["test"]
    for rel in splits["splits"]["train"]:
        link = root / "Original" / rel
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink((data / "Original" / rel).resolve(), link)
    for rel in progress(rendered, f"rendering as '{lab.name}'"):
        target = root / "Original" / rel
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        bgr = cv2.cvtColor(other_lab_view(read_rgb(data / "Original" / rel), lab), cv2.COLOR_RGB2BGR)
        tmp = target.with_name(f".{target.name}.tmp.jpg")
        if not cv2.imwrite(str(tmp), bgr, [cv2.IMWRITE_JPEG_QUALITY, SAVED_QUALITY]):
            raise OSError(f"{tmp}: could not write the rendered field")
        os.replace(tmp, target)
    return root


def fewer_validation_fields(splits_path: Path, n: int, seed: int = 0) -> Path:
    """The splits with `n` of their validation fields, the same number from each class (the first path part), drawn at random."""
    splits = json.loads(splits_path.read_text())
    by_class: dict[str, list[str]] = {}
    for rel in sorted(splits["splits"]["val"]):
        by_class.setdefault(rel.split("/")[0], []).append(rel)
    rng = np.random.default_rng(seed)
    splits["splits"]["val"] = sorted(rel for paths in by_class.values() for rel in rng.permutation(paths)[: n // len(by_class)])
    out = splits_path.with_name(f"{splits_path.stem}-val-{n}.json")
    out.write_text(json.dumps(splits, indent=1))
    return out


def evaluated(bundle: Path, data: Path, splits: Path, out: Path) -> dict[str, float]:
    """`leukoscope evaluate` on the test split: 4-class accuracy, benign vs malignant, the share flagged."""
    if not (out / "metrics.json").is_file():
        leukoscope("evaluate", str(bundle), "--data", str(data), "--splits", str(splits), "--split", "test", "--bootstrap", "500", "--out", str(out))
    m = json.loads((out / "metrics.json").read_text())
    two_way = m["benign_vs_malignant"]
    return {
        "accuracy": m["accuracy"], "accuracy_ci": m["accuracy_ci"], "benign_specificity": two_way["specificity"],
        "malignant_sensitivity": two_way["sensitivity"], "specificity_at_99_sensitivity": two_way.get("specificity_at_99_sensitivity"),
        "flagged": m["abstained"] / m["n"], "out_of_focus": m.get("out_of_focus", 0) / m["n"], "accepted_error": m.get("accepted_error"),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default=str(DEFAULT_DATA))
    parser.add_argument("--out", required=True, help="review_finetune.py's folder, after its prepare and base stages")
    parser.add_argument("--lab", default="pale", help="the simulated laboratory: text its name holds (leukoscope.data.shifts.OTHER_LABS)")
    parser.add_argument("--cells", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--protocols", nargs="+", choices=list(PROTOCOLS), default=list(PROTOCOLS), help="the fine-tunes: on the reviewed cells alone, or with the base fields")
    parser.add_argument("--pixel-size", help="the lab's pixel size for the review and the fine-tunes (data.pixel_size): auto, field or µm; default: a fine-tune's")
    parser.add_argument("--val-fields", type=int, help="a lab that labelled fewer validation fields: this many of them, class-balanced (default: all)")
    args = parser.parse_args()
    data, out = Path(args.data), Path(args.out)
    base = out / "base" / "bundle"
    if not base.is_dir():
        raise SystemExit(f"{base}: no base bundle; run benchmarks/review_finetune.py --out {out} --stage prepare, then --stage base")
    labs = [lab for lab in OTHER_LABS if args.lab in lab.name]
    if not labs:
        raise SystemExit(f"--lab {args.lab}: no simulated laboratory's name holds it ({'; '.join(lab.name for lab in OTHER_LABS)})")
    lab_root = render_lab(data, out, labs[0])
    lab_fields = lab_root / "Original"  # class folders: the release layout needs a Segmented variant too
    splits = out / "splits-base.json"
    results = {"base (no review)": {"lab": evaluated(base, lab_fields, splits, lab_root / "eval-base"), "original": evaluated(base, data, splits, out / "eval-base-original"), "reviewed_cells": 0}}  # fmt: skip
    told = [] if args.pixel_size is None else [f"data.pixel_size={args.pixel_size}"]
    suffix = ("" if args.pixel_size is None else f"-pixel-size-{args.pixel_size}") + ("" if args.val_fields is None else f"-val-{args.val_fields}")
    held = json.loads((out / "held_out.json").read_text())["fields"]
    scale = crop_scale(load_config("configs/cells.yaml", [f"train.init_from={base}", *told]), [str(lab_fields / rel) for rel in held])
    print(f"the lab's cells, as its review and fine-tunes cut them: {scale.note}")
    reviews = lab_root / f"reviews{suffix}"
    reviews.mkdir(exist_ok=True)
    for protocol in args.protocols:
        with_base, overrides = PROTOCOLS[protocol]
        for n in args.cells:
            name = f"finetune-{n}-{protocol.replace(' ', '-')}{suffix}"
            run = lab_root / name
            review, run_splits, n_rows = simulated_review(lab_root, out, n, with_base, into=reviews, pixel_scale=scale.pixel_scale, training_scale=scale.training_scale)
            if args.val_fields is not None:
                run_splits = fewer_validation_fields(run_splits, args.val_fields)
            started, trained = time.perf_counter(), not (run / "bundle").is_dir()
            if trained:
                leukoscope(
                    "train", "--config", "configs/cells.yaml", "--data", str(lab_fields), "--splits", str(run_splits), "--out", str(run),
                    f"train.init_from={base}", f"data.cell_labels={review}", *overrides, *told,
                )  # fmt: skip
            pool = json.loads((run / "bundle" / "bundle.json").read_text())["calibration"].get("attention_pool", {})
            results[f"+{n} reviewed, {protocol}"] = {
                "lab": evaluated(run / "bundle", lab_fields, splits, run / "eval-lab"), "original": evaluated(run / "bundle", data, splits, run / "eval-original"),
                "reviewed_cells": n_rows, "seconds": round(time.perf_counter() - started) if trained else None,
                "attention_pool": pool.get("chosen", ""),
            }  # fmt: skip
    (lab_root / f"results{suffix}.json").write_text(json.dumps(results, indent=1))
    print(f"simulated laboratory: {labs[0].name}")
    print(f"{'model':32} {'cells':>5}  {'lab: 4-class (95 % CI)':>24} {'spec':>6} {'sens':>6} {'flagged':>8}  {'original: 4-class':>18} {'flagged':>8} {'s':>5}  attention pool")
    for name, r in results.items():
        lab, orig = r["lab"], r["original"]
        ci = f"{100 * lab['accuracy']:.1f} ({100 * lab['accuracy_ci'][0]:.1f}-{100 * lab['accuracy_ci'][1]:.1f})"
        print(
            f"{name:32} {r['reviewed_cells']:5d}  {ci:>24} {100 * lab['benign_specificity']:5.1f}% {100 * lab['malignant_sensitivity']:5.1f}% {100 * lab['flagged']:7.1f}%"
            f"  {100 * orig['accuracy']:17.1f}% {100 * orig['flagged']:7.1f}% {r.get('seconds') or '':>5}  {r.get('attention_pool', '')}"
        )


if __name__ == "__main__":
    main()
