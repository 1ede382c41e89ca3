"""Dataset audit: counts, unreadable and blank files, duplicates, shortcut markers, split leaks."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from leukoscope.data.discover import RELEASE_VARIANTS, is_release_layout
from leukoscope.data.duplicates import connected_groups, exact_duplicate_groups
from leukoscope.data.manifest import Manifest, build_manifest
from leukoscope.data.split import split_membership

RED_ANNOTATION_MIN_FRACTION = 0.002  # share of red pixels in the lower-right box that marks a red scale bar
SHORTCUT_SPREAD = 0.2  # warn when the share of red annotations differs by this much between classes
BRIGHT_BACKGROUND = 100  # the annotation check only applies to bright (unsegmented) fields


def audit_dataset(source: str | Path, splits: dict[str, Any] | None = None, workers: int | None = None) -> dict[str, Any]:
    """Audit every variant of a release (Original and Segmented), or the one folder or CSV given."""
    root = Path(source)
    variants = list(RELEASE_VARIANTS) if root.is_dir() and is_release_layout(root) else [None]
    manifests = {v: build_manifest(root, variant=v or "Original", workers=workers) for v in variants}
    sections = {v: _audit_manifest(m, v) for v, m in manifests.items()}
    primary = sections[variants[0]]
    report: dict[str, Any] = {
        "source": str(root),
        "classes": primary["classes"],
        "n_images": sum(s["n_images"] for s in sections.values()),
        "unreadable": [x for s in sections.values() for x in s["unreadable"]],
        "blank": [x for s in sections.values() for x in s["blank"]],
        "exact_duplicate_groups": [x for s in sections.values() for x in s["exact_duplicate_groups"]],
        "near_duplicate_groups": [x for s in sections.values() for x in s["near_duplicate_groups"]],
        "image_sizes": dict(sum((Counter(s["image_sizes"]) for s in sections.values()), Counter())),
        "annotation_red_share": primary["annotation_red_share"],
        "warnings": [w for s in sections.values() for w in s["warnings"]],
        "dataset_fingerprint": manifests[variants[0]].fingerprint,
    }
    if variants[0] is not None:
        report["variants"] = {v: {k: val for k, val in s.items() if k != "warnings"} for v, s in sections.items()}
    if splits is not None:
        variant = splits.get("variant") if splits.get("variant") in manifests else variants[0]
        report["leaks"] = find_leaks(manifests[variant], splits)
        if report["leaks"]:
            report["warnings"].append(f"{len(report['leaks'])} identical or near-identical image group(s) cross splits")
    return report


def _audit_manifest(m: Manifest, variant: str | None) -> dict[str, Any]:
    tag = f"[{variant}] " if variant else ""
    readable = m.rows + m.blank
    classes = {c: 0 for c in m.classes}
    classes.update(Counter(r.label for r in readable))
    exact = [[m.rows[i].path for i in g] for g in exact_duplicate_groups([r.sha256 for r in m.rows])]
    exact_sets = {frozenset(g) for g in exact}
    near = []
    for comp in connected_groups(len(m.rows), m.near_pairs):
        paths = [m.rows[i].path for i in comp]
        if frozenset(paths) not in exact_sets:
            near.append(paths)
    warnings = [f"{tag}{w}" for w in m.warnings]
    for c, n in classes.items():
        if n == 0:
            warnings.append(f"{tag}class {c} has no readable images")
    if m.bad_files:
        warnings.append(f"{tag}{len(m.bad_files)} file(s) cannot be read; they are listed under 'unreadable' and left out")
    if m.blank:
        by_class = Counter(r.label for r in m.blank)
        detail = ", ".join(f"{n} in {c}" for c, n in sorted(by_class.items()))
        warnings.append(f"{tag}{len(m.blank)} near-blank image(s) ({detail}): they carry no cells and are left out of splits")
    if exact:
        n_extra = sum(len(g) - 1 for g in exact)
        warnings.append(f"{tag}{len(exact)} group(s) of byte-identical images ({n_extra} redundant copies); splits keep each group together")
    cross = [g for g in near + exact if len({_label_of(m, p) for p in g}) > 1]
    if near:
        warnings.append(f"{tag}{len(near)} group(s) of near-duplicate images (same field re-photographed or re-encoded)")
    if cross:
        warnings.append(f"{tag}{len(cross)} duplicate group(s) span different classes: conflicting labels for one image")
    red_share = _annotation_red_share(m)
    if len(red_share) > 1 and max(red_share.values()) - min(red_share.values()) >= SHORTCUT_SPREAD:
        detail = ", ".join(f"{c} {100 * s:.0f} %" for c, s in red_share.items())
        warnings.append(
            f"{tag}the lower-right annotation (scale bar) is red in a share of images that differs between classes "
            f"({detail}): a model can learn the class from it; mask it (preprocess.mask_annotation=true) or check with shortcut tests"
        )
    sizes = Counter(f"{r.width}x{r.height}" for r in readable)
    if len(sizes) > 1:
        warnings.append(f"{tag}{len(sizes)} different image sizes; preprocessing resizes them, keeping aspect ratio")
    return {
        "classes": classes,
        "n_images": len(readable) + len(m.bad_files),
        "unreadable": m.bad_files,
        "blank": [{"path": r.path, "label": r.label, "foreground_fraction": r.foreground_fraction} for r in m.blank],
        "exact_duplicate_groups": exact,
        "near_duplicate_groups": near,
        "image_sizes": dict(sizes),
        "annotation_red_share": red_share,
        "warnings": warnings,
    }


def _label_of(m: Manifest, path: str) -> str:
    return next(r.label for r in m.rows if r.path == path)


def _annotation_red_share(m: Manifest) -> dict[str, float]:
    """Per class, the share of bright-field images whose lower-right annotation is red."""
    totals: Counter = Counter()
    red: Counter = Counter()
    for r in m.rows:
        if r.brightness >= BRIGHT_BACKGROUND:
            totals[r.label] += 1
            red[r.label] += r.annotation_red_fraction >= RED_ANNOTATION_MIN_FRACTION
    return {c: round(red[c] / n, 3) for c, n in sorted(totals.items()) if n}


def find_leaks(m: Manifest, splits: dict[str, Any]) -> list[dict[str, Any]]:
    """Identical or near-identical images that sit in different splits (main partition and each fold)."""
    partitions = [("splits", split_membership(splits))]
    for k, fold in enumerate(splits.get("folds", [])):
        partitions.append((f"fold {k}", {p: name for name, paths in fold.items() for p in paths}))
    links = list(m.near_pairs)
    for g in exact_duplicate_groups([r.sha256 for r in m.rows]):
        links += [(g[0], k) for k in g[1:]]
    leaks = []
    for comp in connected_groups(len(m.rows), links):
        rel = [m.relative_path(m.rows[i]) for i in comp]
        for where, membership in partitions:
            placed = defaultdict(list)
            for p in rel:
                if p in membership:
                    placed[membership[p]].append(p)
            if len(placed) > 1:
                leaks.append({"where": where, "splits": dict(placed)})
    return leaks
