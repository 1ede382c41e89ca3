"""The manifest: one row per usable image, with content and perceptual fingerprints and its group."""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path


from leukoscope.data.discover import Discovery, discover
from leukoscope.data.duplicates import connected_groups, exact_duplicate_groups, near_duplicate_pairs
from leukoscope.data.fingerprint import ImageFacts, scan_image
from leukoscope.errors import DataError
from leukoscope.io_utils import atomic_write
from leukoscope.workers import parallel_map


BLANK_FOREGROUND = 0.01  # below 1 % of pixels unlike the dominant colour, an image is blank


@dataclass
class ManifestRow:
    path: str
    label: str
    group: str
    sha256: str
    width: int
    height: int
    mode: str
    phash: str
    brightness: float
    foreground_fraction: float
    annotation_red_fraction: float


@dataclass
class Manifest:
    """Usable rows, and what was set aside: blank (near-empty) images and unreadable files."""

    root: str
    classes: list[str]
    rows: list[ManifestRow]
    blank: list[ManifestRow]
    bad_files: list[dict[str, str]]
    warnings: list[str]
    near_pairs: list[tuple[int, int]]  # indices into rows

    @property
    def fingerprint(self) -> str:
        return dataset_fingerprint(self.rows)

    def relative_path(self, row: ManifestRow) -> str:
        return os.path.relpath(row.path, self.root) if Path(self.root).is_dir() else row.path


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def scan_paths(paths: list[str], workers: int | None = None, desc: str = "scanning") -> list[ImageFacts]:
    """Scan images in parallel with a progress bar; order is preserved, failures are in `error`."""
    workers = workers or default_workers()
    return parallel_map(scan_image, paths, workers if len(paths) >= 64 else 1, desc)


def dataset_fingerprint(rows: list[ManifestRow]) -> str:
    """Order-independent hash of (label, content) pairs: same images, same labels, same fingerprint."""
    digest = hashlib.sha256()
    for line in sorted(f"{r.label}\t{r.sha256}" for r in rows):
        digest.update(line.encode() + b"\n")
    return digest.hexdigest()[:16]


def build_manifest(
    source: str | Path | Discovery,
    variant: str = "Original",
    workers: int | None = None,
    blank_foreground: float = BLANK_FOREGROUND,
) -> Manifest:
    """Discover, scan and group a dataset. Unreadable and blank images are set aside, not dropped silently."""
    found = source if isinstance(source, Discovery) else discover(source, variant)
    root = found.source if found.layout != "release" else str(Path(found.source) / variant)
    if found.layout == "csv":
        root = str(Path(found.source).parent)
    facts = scan_paths([s.path for s in found.samples], workers)
    bad = list(found.bad_files)
    kept: list[tuple[ImageFacts, str, str]] = []
    for sample, fact in zip(found.samples, facts):
        if fact.error:
            bad.append({"path": sample.path, "reason": fact.error})
        else:
            kept.append((fact, sample.label, sample.group))
    if not kept:
        raise DataError(f"{found.source}: no readable images found")
    readable = [
        ManifestRow(f.path, label, group, f.sha256, f.width, f.height, f.mode, f.phash, f.brightness, f.foreground_fraction, f.annotation_red_fraction)
        for f, label, group in kept
    ]
    thumbs = [f.thumbnail for f, _, _ in kept]
    is_blank = [r.foreground_fraction < blank_foreground for r in readable]
    rows = [r for r, b in zip(readable, is_blank) if not b]
    blank = [r for r, b in zip(readable, is_blank) if b]
    near = near_duplicate_pairs([r.phash for r in rows], [t for t, b in zip(thumbs, is_blank) if not b])
    _assign_groups(rows, near)
    return Manifest(root, found.classes, rows, blank, bad, list(found.warnings), near)


def _assign_groups(rows: list[ManifestRow], near_pairs: list[tuple[int, int]]) -> None:
    """Union of given groups, exact and near duplicates; a lone image is its own group."""
    links = list(near_pairs)
    for g in exact_duplicate_groups([r.sha256 for r in rows]):
        links += [(g[0], k) for k in g[1:]]
    first_of_group: dict[str, int] = {}
    for i, r in enumerate(rows):
        if r.group:
            links.append((first_of_group.setdefault(r.group, i), i))
    for r in rows:
        r.group = r.group or f"img-{r.sha256[:12]}"
    for comp in connected_groups(len(rows), links):
        names = sorted({rows[i].group for i in comp})
        merged = names[0] if len(names) == 1 else "+".join(names[:3]) + ("+..." if len(names) > 3 else "")
        for i in comp:
            rows[i].group = merged


MANIFEST_FIELDS = [f.name for f in fields(ManifestRow)]


def write_manifest_csv(rows: list[ManifestRow], path: str | Path) -> None:
    with atomic_write(path, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        for r in rows:
            writer.writerow(asdict(r))
