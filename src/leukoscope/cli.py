"""The `leukoscope` command: one verb per job. The only module that knows every stage."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from leukoscope.errors import LeukoscopeError

Handler = Callable[[argparse.Namespace], int]


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for k, r in enumerate(cells):
        print("  ".join(c.rjust(w) if k and i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if k == 0:
            print("  ".join("-" * w for w in widths))


def _split_overrides(items: Sequence[str]) -> tuple[list[str], list[str]]:
    """Positional words: `section.key=value` overrides, the rest paths (a real path wins)."""
    paths, overrides = [], []
    for item in items:
        (overrides if "=" in item and not Path(item).exists() else paths).append(item)
    return paths, overrides


# --------------------------------------------------------------------------- data
def cmd_synth(args: argparse.Namespace) -> int:
    from leukoscope.data.synth import synth_dataset

    out = synth_dataset(args.out, args.per_class, size=args.size, seed=args.seed, shortcut=args.shortcut)
    print(f"wrote {4 * args.per_class} synthetic fields to {out}/ (cell positions in {out}/cells.json)")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from leukoscope.data.audit import audit_dataset
    from leukoscope.data.split import load_splits
    from leukoscope.io_utils import write_json

    splits = load_splits(args.splits) if args.splits else None
    report = audit_dataset(args.data, splits=splits, workers=args.workers)
    sections = report.get("variants") or {"": report}
    for name, sec in sections.items():
        print(f"\n{name or Path(args.data).name}: {sum(sec['classes'].values())} readable image(s)")
        blank = {}
        for b in sec["blank"]:
            blank[b["label"]] = blank.get(b["label"], 0) + 1
        _print_table(
            ["class", "images", "blank", "red annotation"],
            [[c, n, blank.get(c, 0), f"{100 * sec['annotation_red_share'].get(c, 0):.0f} %"] for c, n in sec["classes"].items()],
        )
        print(
            f"unreadable: {len(sec['unreadable'])}  exact duplicate groups: {len(sec['exact_duplicate_groups'])}  "
            f"near-duplicate groups: {len(sec['near_duplicate_groups'])}  sizes: {sec['image_sizes']}"
        )
    for bad in report["unreadable"]:
        print(f"  unreadable: {bad['path']}: {bad['reason']}")
    if "leaks" in report:
        print(f"\nleaks across splits: {len(report['leaks'])}")
    if report["warnings"]:
        print("\nwarnings:")
        for w in report["warnings"]:
            print(f"  - {w}")
    write_json(args.out, report)
    print(f"\naudit written to {args.out}")
    return 0


def cmd_split(args: argparse.Namespace) -> int:
    from leukoscope.data.manifest import build_manifest
    from leukoscope.data.split import make_splits
    from leukoscope.io_utils import write_json

    manifest = build_manifest(args.data, variant=args.variant, workers=args.workers)
    doc = make_splits(
        manifest,
        test_per_class=args.test_per_class,
        test_fraction=args.test_fraction,
        val_fraction=args.val_fraction,
        folds=args.folds,
        seed=args.seed,
        variant=args.variant,
    )
    for bad in doc["excluded"]:
        print(f"left out: {bad['path']}: {bad['reason']}", file=sys.stderr)
    _print_table(["split"] + doc["classes"], [[s] + [c.get(k, 0) for k in doc["classes"]] for s, c in doc["counts"].items()])
    if doc["folds"]:
        print(f"{len(doc['folds'])} group-aware stratified folds over train+val")
    write_json(args.out, doc)
    print(f"splits written to {args.out} (seed {args.seed}, data fingerprint {doc['dataset_fingerprint']})")
    return 0


# --------------------------------------------------------------------------- preprocess
def cmd_preprocess(args: argparse.Namespace) -> int:
    from leukoscope.config import load_config
    from leukoscope.preprocess import Pipeline

    data, overrides = _split_overrides(args.items)
    if len(data) > 1:
        raise LeukoscopeError(f"one dataset at a time, got {len(data)}: {' '.join(data)}")
    args.data = data[0] if data else None
    cfg = load_config(args.config, overrides)
    pipeline = Pipeline(cfg.preprocess)
    if args.preview:
        from leukoscope.preprocess.preview import save_preview

        out = save_preview(args.preview, pipeline, args.out or "preview.png")
        print(f"preview of {len(args.preview)} image(s) through {len(pipeline.named_steps())} step(s) written to {out}")
        return 0
    if not args.data:
        raise LeukoscopeError("give a dataset to precompute (DATA) or --preview IMAGE...")
    from leukoscope.data.manifest import build_manifest, default_workers
    from leukoscope.preprocess.cache import PreprocessCache, preprocess_many

    manifest = build_manifest(args.data, variant=cfg.data.variant, workers=args.workers)
    cache = PreprocessCache(args.out or cfg.data.cache_dir or None, pipeline)
    rows = manifest.rows
    stack, failures = preprocess_many([r.path for r in rows], [r.sha256 for r in rows], cache, workers=args.workers or default_workers())
    for f in failures + manifest.bad_files:
        print(f"skipped: {f['path']}: {f['reason']}", file=sys.stderr)
    print(f"{len(stack)} image(s) preprocessed at {pipeline.config.size} px, cached in {cache.folder}")
    return 0


# --------------------------------------------------------------------------- models
def cmd_models(args: argparse.Namespace) -> int:
    from leukoscope.models.registry import count_gflops, create_model, list_models, weights_status

    rows = []
    for name in list_models():
        model = create_model(name, args.num_classes)
        rows.append([name, f"{model.num_parameters() / 1e6:.1f} M", f"{count_gflops(model, args.input_size):.2f}", "yes" if weights_status(name) else "no"])
    _print_table(["model", "parameters", f"GFLOPs@{args.input_size}", "ImageNet weights local"], rows)
    print("\nvgg19_mhsa / vgg19_bn_mhsa accept model.kwargs such as width=0.25 for CPU training from scratch.")
    return 0


# --------------------------------------------------------------------------- train
def cmd_train(args: argparse.Namespace) -> int:
    from leukoscope.config import load_config

    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data.root={args.data}")
    if args.splits:
        overrides.append(f"data.splits={args.splits}")
    cfg = load_config(args.config, overrides)
    out = Path(args.out or Path("runs") / cfg.name)
    _check_paths(cfg)
    from leukoscope.engine.train import train

    bundle = train(cfg, out, resume=args.resume)
    if bundle is None:
        return 0
    metrics = json.loads((out / "metrics.json").read_text())
    for split, m in metrics.items():
        lo, hi = m["accuracy_ci"]
        print(f"{split}: accuracy {100 * m['accuracy']:.2f} % (95 % CI {100 * lo:.1f}-{100 * hi:.1f}, n={m['n']}), macro-F1 {m.get('macro_f1', 0):.4f}")
    print(f"run folder: {out}  bundle: {bundle}")
    return 0


def _check_paths(cfg) -> None:  # noqa: ANN001
    """Fail before training on paths that do not exist, naming the key."""
    for key, value in (("data.root", cfg.data.root), ("data.splits", cfg.data.splits)):
        if value and not Path(value).exists():
            raise LeukoscopeError(f"{key}: {value} does not exist")


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leukoscope",
        description="ALL subtype classification from smear images: a research tool and second reader, not a medical device.",
    )
    from leukoscope import __version__

    parser.add_argument("--version", action="version", version=f"leukoscope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("synth", help="write a synthetic smear dataset (the embedded default)")
    p.add_argument("out", help="output folder (class-per-folder)")
    p.add_argument("--per-class", type=int, default=50, help="images per class (default 50)")
    p.add_argument("--size", type=int, default=224, help="field size in pixels (default 224)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shortcut", choices=["annotation", "background"], default=None, help="plant a class shortcut (for testing checks)")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("audit", help="audit a dataset: counts, unreadable, blank, duplicates, shortcuts, leaks")
    p.add_argument("data", help="class-per-folder tree, release root (Original/ + Segmented/) or CSV manifest")
    p.add_argument("--splits", help="a splits file: also report images leaking across splits")
    p.add_argument("--out", default="audit.json", help="JSON report (default audit.json)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("split", help="stratified, group-aware train/val/test split (and k folds)")
    p.add_argument("data")
    p.add_argument("--out", default="splits.json")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--test-per-class", type=int, default=None, help="hold out N images per class for test")
    g.add_argument("--test-fraction", type=float, default=None, help="hold out this fraction for test (default 0.2)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="fraction of the non-test part for validation")
    p.add_argument("--folds", type=int, default=0, help="also make K StratifiedGroupKFold folds over train+val")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variant", default="Original", help="release variant: Original (default) or Segmented")
    p.add_argument("--workers", type=int, default=None)
    p.set_defaults(func=cmd_split)

    p = sub.add_parser("preprocess", help="precompute the preprocessing cache, or preview each step")
    p.add_argument("items", nargs="*", metavar="DATA | KEY=VALUE", help="dataset to precompute; config overrides")
    p.add_argument("--out", help="cache folder (default ~/.cache/leukoscope), or the preview PNG with --preview")
    p.add_argument("--config", help="config YAML (its preprocess section is used)")
    p.add_argument("--preview", nargs="+", metavar="IMAGE", help="write a grid of these images after every step")
    p.add_argument("--workers", type=int, default=None)
    p.set_defaults(func=cmd_preprocess)

    p = sub.add_parser("models", help="list registered models: parameters, GFLOPs, local ImageNet weights")
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--num-classes", type=int, default=4)
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("train", help="train a model from a config; ends by writing RUN_DIR/bundle/")
    p.add_argument("--config", required=True, help="configs/NAME.yaml (or a built-in name: smoke, cpu-fast, paper, resnet101)")
    p.add_argument("--data", help="dataset (overrides data.root)")
    p.add_argument("--splits", help="splits file (overrides data.splits)")
    p.add_argument("--out", help="run folder (default runs/<name>)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/last.ckpt")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.max_epochs=5")
    p.set_defaults(func=cmd_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LeukoscopeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
