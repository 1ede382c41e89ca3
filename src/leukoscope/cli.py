"""The `leukoscope` command: one verb per job. The only module that knows every stage."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from leukoscope.errors import LeukoscopeError, OutputError

if TYPE_CHECKING:  # the stages are imported where a command runs, so that `--help` stays quick
    from leukoscope.scoring.bundle import Bundle

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


def _bounded(cast: Callable[[str], float], ok: Callable[[float], bool], rule: str) -> Callable[[str], float]:
    """An argparse type for a number within bounds (argparse names the option in its error)."""

    def parse(text: str) -> float:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'a whole number' if cast is int else 'a number'}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{rule}, got {value:g}")
        return value

    return parse


positive = _bounded(int, lambda v: v >= 1, "must be at least 1")
count = _bounded(int, lambda v: v >= 0, "must be at least 0")
at_least_two = _bounded(int, lambda v: v >= 2, "must be at least 2")
port = _bounded(int, lambda v: 1 <= v <= 65535, "a TCP port is 1-65535")
positive_float = _bounded(float, lambda v: v > 0, "must be above 0")
fraction = _bounded(float, lambda v: 0 < v < 1, "must lie in (0, 1)")
fraction_or_zero = _bounded(float, lambda v: 0 <= v < 1, "must lie in [0, 1)")


def pixel_size(text: str) -> str | float:
    """An argparse type: 'auto', 'field', or a pixel size in µm."""
    from leukoscope.cells.ruler import parse_pixel_size

    try:
        return parse_pixel_size(text)
    except LeukoscopeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


PIXEL_SIZE_HELP = (
    "the images' pixel size in µm, 'auto' (measured on their red cells: the images must share one microscope) or 'field' "
    "(each image taken to show a training field's field of view): cells are detected and cropped at the training fields' "
    "pixel size (cell-level bundles)"
)


def _parent_is_a_file(text: str) -> None:
    from leukoscope.io_utils import refuse_file_parent

    try:
        refuse_file_parent(text)
    except OutputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def path_out(text: str) -> str:
    """An output that may be a file or a folder: refused up front when a parent is a file."""
    _parent_is_a_file(text)
    return text


def file_out(text: str) -> str:
    """An output file: refused up front when a folder stands there or a parent is a file, not after the work is done."""
    _parent_is_a_file(text)
    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; name the file to write")
    return text


def folder_out(text: str) -> str:
    """An output folder: refused up front when a file stands there or where a parent folder goes."""
    _parent_is_a_file(text)
    if Path(text).exists() and not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file; name a folder to write into")
    return text


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
    from leukoscope.io_utils import report_left_out, write_json

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
    report_left_out(doc["excluded"], doc["warnings"])
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
    print("\nvgg19_mhsa and vgg{11,13,16,19}_bn_mhsa accept model.kwargs such as width=0.25 for CPU training from scratch.")
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
    _print_run(out, bundle)
    return 0


def _print_run(out: Path, bundle: Path) -> None:
    """A finished run's accuracy on each split it scored, and where its bundle is."""
    metrics = json.loads((out / "metrics.json").read_text())
    for split, m in metrics.items():
        lo, hi = m["accuracy_ci"]
        print(f"{split}: accuracy {100 * m['accuracy']:.2f} % (95 % CI {100 * lo:.1f}-{100 * hi:.1f}, n={m['n']}), macro-F1 {m.get('macro_f1', 0):.4f}")
    print(f"run folder: {out}  bundle: {bundle}")


def cmd_ensemble(args: argparse.Namespace) -> int:
    from leukoscope.engine.ensemble import join_bundles

    if args.data and not Path(args.data).exists():
        raise LeukoscopeError(f"--data: {args.data} does not exist")
    out = Path(args.out)
    bundle = join_bundles(args.bundles, out, data_root=args.data, overrides=args.overrides)
    _print_run(out, bundle)
    disagreement = json.loads((bundle / "bundle.json").read_text())["abstain"].get("disagreement") or {}
    if disagreement.get("validation_share") is not None:
        agreed = disagreement["validation_error_agreed"]
        print(
            f"the members disagree on {100 * disagreement['validation_share']:.1f} % of the validation fields, which go to review; "
            + ("the calls they agree on are all right" if not agreed else f"the calls they agree on miss {100 * agreed:.1f} %")
        )
    return 0


def _check_paths(cfg) -> None:  # noqa: ANN001
    """Fail before training on paths that do not exist, naming the key."""
    for key, value in (("data.root", cfg.data.root), ("data.splits", cfg.data.splits)):
        if value and not Path(value).exists():
            raise LeukoscopeError(f"{key}: {value} does not exist")


# --------------------------------------------------------------------------- evaluate / predict
def _load_bundle(path: str, min_leukocytes: int | None) -> Bundle:
    """The bundle, with the leukocyte minimum given on the command line in place of its own."""
    from leukoscope.scoring.bundle import load_bundle
    from leukoscope.scoring.predictions import min_leukocytes_problem

    bundle = load_bundle(path)
    if min_leukocytes is not None:
        if problem := min_leukocytes_problem(min_leukocytes, bundle.cell_level):
            raise LeukoscopeError(f"--min-leukocytes {min_leukocytes}: {problem}")
        bundle.min_leukocytes = min_leukocytes
    return bundle


TTA_HELP = "each unit as the mean over 8 flips and rotations (default: as the bundle's thresholds were set, its eval.tta)"


def _warn_other_views(bundle: Bundle, tta: bool) -> None:
    """Say so where units are read otherwise than the bundle's thresholds and OOD statistics were set on."""
    if tta != bundle.tta:
        views = {True: "the mean of 8 flips and rotations", False: "one orientation"}
        print(
            f"warning: {bundle.path}: its thresholds and out-of-distribution statistics were set on {views[bundle.tta]} of each unit; "
            f"read in {views[tta]}, its flags and confidences are not those it was calibrated for",
            file=sys.stderr,
        )


MIN_LEUKOCYTES_HELP = "a field with fewer leukocytes is flagged for review, too few to call (cell-level models; default: the bundle's own)"


def cmd_evaluate(args: argparse.Namespace) -> int:
    from leukoscope.evaluation.evaluate import evaluate_paths, labelled_paths
    from leukoscope.inference.predictor import Predictor, with_error_rows, write_predictions
    from leukoscope.io_utils import write_json

    bundle = _load_bundle(args.bundle, args.min_leukocytes)
    if args.probe and not Path(args.probe).is_file():
        raise LeukoscopeError(f"{args.probe}: probe result not found")
    paths, truth = labelled_paths(bundle, args.data, args.splits, args.split)
    pixel_scale = _pixel_scale(args.pixel_size, bundle, paths)  # the calls scored are those predict makes
    predictor = Predictor(bundle, backend=args.backend, batch_size=args.batch_size, tta=args.tta, pixel_scale=pixel_scale)
    _warn_other_views(bundle, predictor.tta)
    rows, metrics, failures = evaluate_paths(predictor, paths, truth, bootstrap=args.bootstrap)
    metrics["tta"] = predictor.tta
    if pixel_scale is not None:
        metrics["pixel_scale"] = pixel_scale
    out = Path(args.out)
    for f in failures:
        print(f"not evaluated: {f['path']}: {f['reason']}", file=sys.stderr)
    if args.shortcut_checks:
        from leukoscope.evaluation.shortcuts import run_shortcut_checks

        metrics["shortcut_checks"] = run_shortcut_checks(predictor, [r["path"] for r in rows], [r["true"] for r in rows], preview=out / "swap_preview.png")
    if args.probe:
        metrics["background_probe"] = json.loads(Path(args.probe).read_text())
    every_input = with_error_rows(paths, rows, failures)
    for row, true in zip(every_input, truth):
        row["true"] = true
    write_predictions(every_input, out / "predictions.csv", bundle.classes, extra_columns=["true", *(["pixel_scale"] if pixel_scale else [])])
    write_json(out / "metrics.json", metrics)
    from leukoscope.evaluation.report import write_report

    report = write_report(out / "report.html", bundle, metrics, rows, data=str(args.data), splits=args.splits)
    _print_metrics(metrics)
    for w in metrics.get("shortcut_checks", {}).get("warnings", []):
        print(f"WARNING: {w}")
    print(f"wrote {out / 'predictions.csv'}, {out / 'metrics.json'} and {report}")
    return 0


def _print_metrics(m: dict) -> None:
    lo, hi = m["accuracy_ci"]
    print(f"n={m['n']}  accuracy {100 * m['accuracy']:.2f} % (95 % CI {100 * lo:.1f}-{100 * hi:.1f})  macro-F1 {m.get('macro_f1', 0):.4f}  ECE {m.get('ece', 0):.4f}")
    bm = m.get("benign_vs_malignant")
    if bm:
        print(
            f"benign vs malignant: sensitivity {100 * bm['sensitivity']:.1f} % ({100 * bm['sensitivity_ci'][0]:.1f}-{100 * bm['sensitivity_ci'][1]:.1f}), "
            f"specificity {100 * bm['specificity']:.1f} % ({100 * bm['specificity_ci'][0]:.1f}-{100 * bm['specificity_ci'][1]:.1f})"
        )
    sc = m.get("screening")
    if sc:
        print(
            f"screening call (p(Benign) below {sc['p_benign_below']:.3f} screens malignant): sensitivity {100 * sc['sensitivity']:.1f} % "
            f"({100 * sc['sensitivity_ci'][0]:.1f}-{100 * sc['sensitivity_ci'][1]:.1f}), "
            f"specificity {100 * sc['specificity']:.1f} % ({100 * sc['specificity_ci'][0]:.1f}-{100 * sc['specificity_ci'][1]:.1f})"
        )
    if m.get("accepted_error") is not None:
        on = "benign vs malignant" if m["abstain_on"] == "malignancy" else "the class"
        target = f" (target {100 * m['target_error']:.0f} %)" if m.get("target_error") is not None else ""
        why = f", {m['too_few_leukocytes']} with fewer than {m['min_leukocytes']} leukocytes" if m.get("min_leukocytes") else ""
        why += f", {m['out_of_focus']} out of focus" if m.get("min_fine_detail") is not None else ""
        why += f", {m['members_disagree']} with the members disagreeing" if "members_disagree" in m else ""
        print(
            f"flagged for review: {m['abstained']} of {m['n']} ({100 * m['abstained'] / m['n']:.1f} %{why}); "
            f"error of the {m['accepted']} calls not flagged, on {on}: {100 * m['accepted_error']:.1f} %{target}"
        )
    if m.get("per_class"):
        _print_table(
            ["class", "n", "precision", "recall", "F1", "specificity"],
            [[c, v["support"], f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}", f"{v['specificity']:.3f}"] for c, v in m["per_class"].items()],
        )


def _pixel_scale(pixel_size: str | float | None, bundle: "Bundle", paths: list[str]) -> float | None:
    """The pixel scale to predict or explain `paths` at, saying where it came from: as given, or, untold, each
    image a training field's view unless their red cells say another magnification (then the scale they give)."""
    from leukoscope.inference.pixel_scale import resolve_pixel_scale, untold_pixel_scale

    if pixel_size is None:
        pixel_scale, warning = untold_pixel_scale(bundle, paths)
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
        return pixel_scale
    pixel_scale, scale_note = resolve_pixel_scale(pixel_size, bundle, paths)
    if scale_note:
        print(scale_note)
    return pixel_scale


def cmd_predict(args: argparse.Namespace) -> int:
    from leukoscope.inference.predictor import Predictor, check_predictions_path, expand_inputs, with_error_rows, write_predictions
    from leukoscope.scoring.predictions import DISAGREE, OUT_OF_FOCUS, TOO_FEW, ood_reason_counts, reason_count

    check_predictions_path(args.out)
    bundle = _load_bundle(args.bundle, args.min_leukocytes)
    paths = expand_inputs(args.paths)
    if not paths:
        raise LeukoscopeError("no images found in the given paths")
    pixel_scale = _pixel_scale(args.pixel_size, bundle, paths)
    predictor = Predictor(bundle, backend=args.backend, batch_size=args.batch_size, tta=args.tta, pixel_scale=pixel_scale)
    _warn_other_views(bundle, predictor.tta)
    rows, failures = predictor.predict_paths(paths)
    for f in failures:
        print(f"not predicted: {f['path']}: {f['reason']}", file=sys.stderr)
    out = write_predictions(with_error_rows(paths, rows, failures), args.out, bundle.classes, ["pixel_scale"] if pixel_scale else [])
    flagged = sum(r["abstain"] for r in rows)
    screened = sum(r.get("screen") == "malignant" for r in rows)
    screening = f"{screened} screen malignant, " if any("screen" in r for r in rows) else ""
    print(
        f"{len(rows)} image(s) predicted, {flagged} flagged for review (abstain/out-of-distribution), {screening}"
        f"{len(failures)} not readable (status 'error' in the output) -> {out}"
    )
    why = ood_reason_counts(rows)
    if why:
        print("out of distribution: " + ", ".join(f"{n} {reason}" for reason, n in why.items()))
    if too_few := reason_count(rows, TOO_FEW):
        print(f"{too_few} with {TOO_FEW} (fewer than {bundle.min_leukocytes})")
    if blurred := reason_count(rows, OUT_OF_FOCUS):
        print(f"{blurred} with {OUT_OF_FOCUS}")
    if split := reason_count(rows, DISAGREE):
        print(f"{split} on which {DISAGREE}")
    return 0 if rows or not failures else 1


def cmd_explain(args: argparse.Namespace) -> int:
    from leukoscope.scoring.bundle import load_bundle
    from leukoscope.explain.overlays import explain_files
    from leukoscope.inference.predictor import expand_inputs

    bundle = load_bundle(args.bundle)
    paths = expand_inputs(args.images)
    pixel_scale = _pixel_scale(args.pixel_size, bundle, paths)
    written, failures = explain_files(bundle, paths, args.out, args.method, pixel_scale)
    for f in failures:
        print(f"not explained: {f['path']}: {f['reason']}", file=sys.stderr)
    print(f"{len(written)} explanation overlay(s) written to {args.out}/, one row per input in {Path(args.out) / 'explain.csv'}")
    return 0 if written or not failures else 1


def cmd_case(args: argparse.Namespace) -> int:
    from leukoscope.case.analyse import Case, read_field
    from leukoscope.case.report import write_case
    from leukoscope.inference.pixel_scale import resolve_pixel_scale
    from leukoscope.inference.predictor import Predictor, expand_inputs
    from leukoscope.scoring.bundle import load_bundle
    from leukoscope.workers import parallel_map

    bundle = load_bundle(args.bundle)
    paths = expand_inputs(args.fields)
    if not paths:
        raise LeukoscopeError("no images found in the given paths")
    name = args.name or Path(args.out).name
    pixel_scale, scale_note = resolve_pixel_scale(args.pixel_size or "auto", bundle, paths, required=args.pixel_size is not None)
    if scale_note:
        print(scale_note)
    case = Case(name, Predictor(bundle, pixel_scale=pixel_scale), min_reliable=args.min_cells, pixel_scale_note=scale_note)
    case.add(parallel_map(lambda p: read_field(p, bundle.pipeline.config.max_pixels), paths, 2, "reading fields"))
    out = write_case(case, args.out)
    for f in case.fields:
        if f["status"] == "error":
            print(f"not read: {f['file']}: {f['error']}", file=sys.stderr)
    s = case.summary()
    print(f"case {name}: {s['fields']} field(s), {s['leukocytes']} {'leukocyte(s)' if case.level == 'cell' else 'field call(s)'}, {s['reliable']} reliable; {s['call']['text']}")
    print(f"  -> {out / 'case.html'}, {out / 'case.json'}, {len(case.cells)} crop(s) in {out / 'cells'}/")
    return 0 if s["fields"] > s["fields_unreadable"] else 1


def cmd_export(args: argparse.Namespace) -> int:
    from leukoscope.scoring.bundle import load_bundle
    from leukoscope.inference.export import export_bundle, write_export_note

    bundle = load_bundle(args.bundle)
    info = export_bundle(bundle, args.out, args.format)
    write_export_note(Path(args.out), info)
    print(f"{args.format} written to {args.out}; parity with PyTorch on {info['parity_images']} images: max |Δp| = {info['parity_max_abs_prob_diff']:.2e}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from leukoscope.scoring.bundle import load_bundle
    from leukoscope.serve.app import beyond_this_machine, exposure_warning, serve

    token = _service_token(args.token_file)
    if beyond_this_machine(args.host) and token is None and not args.insecure:
        raise LeukoscopeError(
            f"refusing to listen on {args.host} without a token: anyone who can reach it could use it; "
            "give --token-file FILE (or set LEUKOSCOPE_TOKEN), or --insecure behind an authenticating proxy"
        )
    bundle = load_bundle(args.bundle)
    warning = exposure_warning(args.host, token=token is not None)
    if warning:
        print(warning, file=sys.stderr)
    access = "a bearer token" if token else "no token"
    print(f"serving {bundle.meta['model']['name']} on http://{args.host}:{args.port}/ with {access} (research use only, not a medical device)")
    if args.audit_log:
        print(f"audit log: {args.audit_log} (one JSON line per API request)")
    serve(bundle, args.host, args.port, args.max_upload_mb, token=token, audit_log=args.audit_log)
    return 0


def _service_token(token_file: str | None) -> str | None:
    """The bearer token from --token-file or LEUKOSCOPE_TOKEN (None when neither is given), checked."""
    if token_file:
        source = token_file
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            raise LeukoscopeError(f"{token_file}: cannot read the token file ({exc.strerror or exc})") from None
    else:
        source, token = "LEUKOSCOPE_TOKEN", os.environ.get("LEUKOSCOPE_TOKEN", "").strip()
        if not token:
            return None
    if len(token) < 16 or any(ch.isspace() for ch in token):
        raise LeukoscopeError(f"{source}: a token must be one line of at least 16 characters without spaces")
    return token


def cmd_cells(args: argparse.Namespace) -> int:
    from leukoscope.cells.crops import CropConfig
    from leukoscope.cells.extract import extract_cells

    summary = extract_cells(args.data, args.out, variant=args.variant, crop=CropConfig(size=args.crop_size, context=args.context, suppress=args.suppress, scale=args.scale), workers=args.workers)
    _print_table(
        ["class", "images", "with ≥1 cell", "cells"],
        [[c, v["images"], v["with_cells"], v["cells"]] for c, v in summary["per_class"].items()],
    )
    print(
        f"{summary['images_with_cells']}/{summary['images']} images ({100 * summary['fraction_with_cells']:.2f} %) have at least one leukocyte; "
        f"{summary['cells']} crops, {summary['cells_per_image']['mean']:.1f} per image"
    )
    print(f"crops and cells.csv (path,label,group=source field) in {args.out}/, quality-control overlay {args.out}/preview.png")
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from leukoscope.experiments.probe import run_background_probe
    from leukoscope.io_utils import write_json

    r = run_background_probe(args.data, args.splits, patch=args.patch, per_image=args.per_image, epochs=args.epochs, seed=args.seed, variant=args.variant)
    lo, hi = r["accuracy_ci"]
    print(f"background-only probe ({r['patch']} px patches without leukocytes): test accuracy {100 * r['accuracy']:.2f} % (95 % CI {100 * lo:.1f}-{100 * hi:.1f}, n={r['patches']['test']} patches)")
    lo, hi = r["image_accuracy_ci"]
    print(f"per image (patches averaged): {100 * r['image_accuracy']:.2f} % (95 % CI {100 * lo:.1f}-{100 * hi:.1f}, n={r['n_images']}); chance {100 * r['chance']:.1f} %")
    if args.out:
        write_json(args.out, r)
    return 0


def cmd_cv(args: argparse.Namespace) -> int:
    from leukoscope.config import load_config
    from leukoscope.experiments.cv import run_cv

    overrides = list(args.overrides) + ([f"data.root={args.data}"] if args.data else [])
    cfg = load_config(args.config, overrides)
    _check_paths(cfg)
    out = Path(args.out or Path("runs") / f"{cfg.name}-cv{args.folds}")
    s = run_cv(cfg, args.folds, out)
    _print_table(
        ["fold", "val n", "val accuracy", "val macro-F1", "test accuracy"],
        [[f["fold"], f.get("val_n", ""), f"{100 * (f.get('val_accuracy') or 0):.2f} %", f"{f.get('val_macro_f1') or 0:.4f}", f"{100 * (f.get('test_accuracy') or 0):.2f} %"] for f in s["folds"]],
    )
    for part in ("val", "test"):
        if part in s:
            p = s[part]
            lo, hi = p["pooled_accuracy_ci"]
            print(
                f"{part}: accuracy {100 * p['accuracy_mean']:.2f} ± {100 * p['accuracy_sd']:.2f} %, macro-F1 {p['macro_f1_mean']:.4f} ± {p['macro_f1_sd']:.4f}, "
                f"pooled {100 * p['pooled_accuracy']:.2f} % (95 % CI {100 * lo:.1f}-{100 * hi:.1f}, n={p['pooled_n']})"
            )
    print(f"cv summary written to {out / 'cv.json'}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from leukoscope.evaluation.compare import compare_predictions
    from leukoscope.io_utils import write_json

    r = compare_predictions(args.a, args.b, resamples=args.bootstrap)
    print(f"{r['n']} paired images (only in A: {r['only_in_a']}, only in B: {r['only_in_b']})")
    _print_table(
        ["", "A", "B", "A - B (95 % CI)"],
        [
            ["accuracy", f"{100 * r['accuracy_a']:.2f} %", f"{100 * r['accuracy_b']:.2f} %", f"{100 * r['accuracy_difference']:+.2f} ({100 * r['accuracy_difference_ci'][0]:+.2f} to {100 * r['accuracy_difference_ci'][1]:+.2f})"],
            ["macro-F1", f"{r['macro_f1_a']:.4f}", f"{r['macro_f1_b']:.4f}", f"{r['macro_f1_difference']:+.4f} ({r['macro_f1_difference_ci'][0]:+.4f} to {r['macro_f1_difference_ci'][1]:+.4f})"],
        ],
    )
    print(f"discordant: A right / B wrong {r['a_right_b_wrong']}, A wrong / B right {r['a_wrong_b_right']}")
    print(r["conclusion"])
    if args.out:
        write_json(args.out, r)
    return 0


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
    p.add_argument("out", type=folder_out, help="output folder (class-per-folder)")
    p.add_argument("--per-class", type=positive, default=50, help="images per class (default 50)")
    p.add_argument("--size", type=positive, default=224, help="field size in pixels (default 224)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shortcut", choices=["annotation", "background", "stain"], default=None, help="plant a class shortcut (for testing checks)")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("audit", help="audit a dataset: counts, unreadable, blank, duplicates, shortcuts, leaks")
    p.add_argument("data", help="class-per-folder tree, release root (Original/ + Segmented/) or CSV manifest")
    p.add_argument("--splits", help="a splits file: also report images leaking across splits")
    p.add_argument("--out", type=file_out, default="audit.json", help="JSON report (default audit.json)")
    p.add_argument("--workers", type=positive, default=None, help="processes (default: all cores)")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("split", help="stratified, group-aware train/val/test split (and k folds)")
    p.add_argument("data")
    p.add_argument("--out", type=file_out, default="splits.json")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--test-per-class", type=positive, default=None, help="hold out N images per class for test")
    g.add_argument("--test-fraction", type=fraction, default=None, help="hold out this fraction for test (default 0.2)")
    p.add_argument("--val-fraction", type=fraction_or_zero, default=0.1, help="fraction of the non-test part for validation")
    p.add_argument("--folds", type=count, default=0, help="also make K StratifiedGroupKFold folds over train+val")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variant", default="Original", help="release variant: Original (default) or Segmented")
    p.add_argument("--workers", type=positive, default=None)
    p.set_defaults(func=cmd_split)

    p = sub.add_parser("preprocess", help="precompute the preprocessing cache, or preview each step")
    p.add_argument("items", nargs="*", metavar="DATA | KEY=VALUE", help="dataset to precompute; config overrides")
    p.add_argument("--out", type=path_out, help="cache folder (default ~/.cache/leukoscope), or the preview PNG with --preview")
    p.add_argument("--config", help="config YAML (its preprocess section is used)")
    p.add_argument("--preview", nargs="+", metavar="IMAGE", help="write a grid of these images after every step")
    p.add_argument("--workers", type=positive, default=None)
    p.set_defaults(func=cmd_preprocess)

    p = sub.add_parser("models", help="list registered models: parameters, GFLOPs, local ImageNet weights")
    p.add_argument("--input-size", type=positive, default=224)
    p.add_argument("--num-classes", type=at_least_two, default=4)
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("train", help="train a model from a config; ends by writing RUN_DIR/bundle/")
    p.add_argument("--config", required=True, help="configs/NAME.yaml (or a built-in name: smoke, cpu-fast, paper, resnet101)")
    p.add_argument("--data", help="dataset (overrides data.root)")
    p.add_argument("--splits", help="splits file (overrides data.splits)")
    p.add_argument("--out", type=folder_out, help="run folder (default runs/<name>)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/last.ckpt")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.max_epochs=5")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("ensemble", help="join bundles trained from different seeds on one split into one bundle, calibrated on their validation split")
    p.add_argument("bundles", nargs="+", metavar="BUNDLE", help="the members' bundle folders (each in the run folder its training wrote)")
    p.add_argument("--data", help="the members' dataset, where it has moved since training (overrides data.root)")
    p.add_argument("--out", type=folder_out, required=True, help="run folder of the ensemble; its bundle goes to OUT/bundle")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="eval.KEY=VALUE", help="an evaluation setting, e.g. eval.target_error=0.02 (repeat for several)")
    p.set_defaults(func=cmd_ensemble)

    p = sub.add_parser("evaluate", help="evaluate a bundle: predictions.csv, metrics.json (95 %% CIs), report.html")
    p.add_argument("bundle")
    p.add_argument("--data", required=True, help="labelled images (class folders, release root or CSV)")
    p.add_argument("--splits", help="a splits file; with --split, evaluate only that split")
    p.add_argument("--split", default="test")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, help=TTA_HELP)
    p.add_argument("--shortcut-checks", action="store_true", help="also evaluate with the annotation masked, the leukocytes masked and the background swapped")
    p.add_argument("--probe", help="a `leukoscope probe background --out` JSON to show in the report's shortcut section")
    p.add_argument("--backend", choices=["torch", "onnx"], default="torch")
    p.add_argument("--batch-size", type=positive, default=32)
    p.add_argument("--bootstrap", type=positive, default=1000, help="bootstrap resamples for intervals")
    p.add_argument("--min-leukocytes", type=count, help=MIN_LEUKOCYTES_HELP)
    p.add_argument("--pixel-size", type=pixel_size, help=PIXEL_SIZE_HELP + "; default: as predict's")
    p.add_argument("--out", type=folder_out, required=True, help="output folder")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="predict images: class, calibrated confidence, abstain and OOD flags")
    p.add_argument("bundle")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders or glob patterns")
    p.add_argument("--out", type=file_out, required=True, help="preds.csv or preds.json")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, help=TTA_HELP)
    p.add_argument("--backend", choices=["torch", "onnx"], default="torch")
    p.add_argument("--batch-size", type=positive, default=32)
    p.add_argument("--pixel-size", type=pixel_size, help=PIXEL_SIZE_HELP + "; default: field, or the scale the images' red cells give where they say another magnification (with a warning)")
    p.add_argument("--min-leukocytes", type=count, help=MIN_LEUKOCYTES_HELP)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("explain", help="Grad-CAM and attention overlays beside each image and its prediction")
    p.add_argument("bundle")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--out", type=folder_out, required=True, help="output folder for PNG overlays")
    p.add_argument("--method", choices=["gradcam", "attention", "both"], default="both")
    p.add_argument("--pixel-size", type=pixel_size, help=PIXEL_SIZE_HELP + "; default: as predict's")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("case", help="a patient's fields as one case: case.json, a crop per cell, case.html (gallery and summary)")
    p.add_argument("bundle")
    p.add_argument("fields", nargs="+", metavar="FIELD", help="the case's image files, folders or glob patterns")
    p.add_argument("--out", type=folder_out, required=True, help="output folder")
    p.add_argument("--name", help="case identifier shown in the report (default: the output folder's name)")
    p.add_argument("--min-cells", type=positive, default=5, help="reliable cells needed for a case call; fewer: refer (default 5)")
    p.add_argument("--pixel-size", type=pixel_size, help=PIXEL_SIZE_HELP + "; default: auto (a case's fields share a microscope), or field where red cells cannot be measured")
    p.set_defaults(func=cmd_case)

    p = sub.add_parser("export", help="export a bundle to ONNX or TorchScript, checked against PyTorch")
    p.add_argument("bundle")
    p.add_argument("--format", choices=["onnx", "torchscript"], default="onnx")
    p.add_argument("--out", type=file_out, required=True)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("serve", help="REST service and web page around a bundle")
    p.add_argument("bundle")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=port, default=8000)
    p.add_argument("--max-upload-mb", type=positive, default=20)
    p.add_argument("--token-file", help="file holding the bearer token every /v1/ call must send (or set LEUKOSCOPE_TOKEN)")
    p.add_argument("--audit-log", type=file_out, help="append one JSON line per API request: time, endpoint, bundle hash, uploads' SHA-256, result, duration")
    p.add_argument("--insecure", action="store_true", help="listen beyond this machine without a token (only behind an authenticating proxy)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("cells", help="detect leukocytes: scale-normalised crops, a crop manifest, a preview and counts")
    p.add_argument("data")
    p.add_argument("--out", type=folder_out, required=True)
    p.add_argument("--variant", default="Original")
    p.add_argument("--crop-size", type=positive, default=64)
    p.add_argument("--context", type=positive_float, default=1.4, help="crop side / cell diameter")
    p.add_argument("--suppress", choices=["constant", "noise", "none", "disc"], default="constant", help="what replaces pixels outside the cell")
    p.add_argument(
        "--scale", choices=["cell", "red_cell", "pixel_size"], default="cell",
        help="size crops by the cell's own diameter, by the field's red cells, or by the training fields' red cells at the images' pixel size",
    )  # fmt: skip
    p.add_argument("--workers", type=positive, default=None)
    p.set_defaults(func=cmd_cells)

    p = sub.add_parser("probe", help="background probe: accuracy of a model that never sees a leukocyte")
    p.add_argument("what", choices=["background"])
    p.add_argument("data")
    p.add_argument("--splits", help="the splits file of the model being judged")
    p.add_argument("--patch", type=positive, default=56)
    p.add_argument("--per-image", type=positive, default=4)
    p.add_argument("--epochs", type=positive, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variant", default="Original")
    p.add_argument("--out", type=file_out, help="write the result as JSON")
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("cv", help="k-fold training and evaluation (StratifiedGroupKFold over train+val)")
    p.add_argument("--config", required=True)
    p.add_argument("--folds", type=at_least_two, default=5)
    p.add_argument("--data", help="dataset (overrides data.root)")
    p.add_argument("--out", type=folder_out, help="output folder (default runs/<name>-cv<K>)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    p.set_defaults(func=cmd_cv)

    p = sub.add_parser("compare", help="paired comparison of two predictions.csv files: exact McNemar and bootstrap CIs")
    p.add_argument("a", help="predictions.csv of model A")
    p.add_argument("b", help="predictions.csv of model B")
    p.add_argument("--bootstrap", type=positive, default=2000)
    p.add_argument("--out", type=file_out, help="also write the result as JSON")
    p.set_defaults(func=cmd_compare)
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
