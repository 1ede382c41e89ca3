"""Find the labelled images of a dataset: class-per-folder, the public release layout, or a CSV."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from leukoscope.data.images import is_image_name
from leukoscope.errors import DataError

RELEASE_VARIANTS = ("Original", "Segmented")


@dataclass(frozen=True)
class Sample:
    path: str
    label: str
    group: str = ""


@dataclass
class Discovery:
    """What was found under a dataset source, including what could not be used and why."""

    source: str
    layout: str  # "folders" | "release" | "csv"
    classes: list[str]
    samples: list[Sample]
    bad_files: list[dict[str, str]] = field(default_factory=list)  # {"path", "reason"}
    warnings: list[str] = field(default_factory=list)


def is_release_layout(root: Path) -> bool:
    return all((root / v).is_dir() for v in RELEASE_VARIANTS)


def discover(source: str | Path, variant: str = "Original") -> Discovery:
    """Discover a dataset. Raises DataError (one line) when the source itself is unusable."""
    root = Path(source)
    if not root.exists():
        raise DataError(f"{root}: no such file or folder")
    if root.is_file():
        if root.suffix.lower() != ".csv":
            raise DataError(f"{root}: expected a folder of class folders or a CSV manifest (path,label[,group])")
        return _discover_csv(root)
    if is_release_layout(root):
        if variant not in RELEASE_VARIANTS:
            raise DataError(f"{root}: unknown variant {variant!r}; choose one of {', '.join(RELEASE_VARIANTS)}")
        found = _discover_folders(root / variant)
        found.source, found.layout = str(root), "release"
        return found
    return _discover_folders(root)


def _list_dir(folder: Path, bad: list[dict[str, str]]) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            return sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    except OSError as exc:
        bad.append({"path": str(folder), "reason": f"unreadable folder ({exc.strerror or exc})"})
        return []


def _discover_folders(root: Path) -> Discovery:
    bad: list[dict[str, str]] = []
    warnings: list[str] = []
    entries = _list_dir(root, bad)
    if bad:
        raise DataError(f"{root}: {bad[0]['reason']}")
    class_dirs = [e for e in entries if e.is_dir()]
    if not class_dirs:
        raise DataError(f"{root}: no class folders found (expected one sub-folder per class)")
    for e in entries:
        if not e.is_dir() and is_image_name(e.name):
            warnings.append(f"{e.path}: ignored, images beside the class folders carry no label")
    samples: list[Sample] = []
    classes: list[str] = []
    for class_dir in class_dirs:
        n_before = len(samples)
        for path in _walk_files(Path(class_dir.path), bad):
            if is_image_name(path):
                samples.append(Sample(str(path), class_dir.name))
            else:
                bad.append({"path": str(path), "reason": f"not an image file (extension {Path(path).suffix or 'none'!r})"})
        classes.append(class_dir.name)
        if len(samples) == n_before:
            warnings.append(f"class folder {class_dir.path} holds no images")
    return Discovery(str(root), "folders", classes, samples, bad, warnings)


def _walk_files(folder: Path, bad: list[dict[str, str]]) -> list[str]:
    out: list[str] = []
    for e in _list_dir(folder, bad):
        if e.is_dir(follow_symlinks=False):
            out.extend(_walk_files(Path(e.path), bad))
        elif e.is_file():
            out.append(e.path)
        else:
            bad.append({"path": e.path, "reason": "not a regular file (broken link or special file)"})
    return out


def _discover_csv(csv_path: Path) -> Discovery:
    base = csv_path.parent
    samples: list[Sample] = []
    with open(csv_path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"path", "label"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(f"{csv_path}: missing column(s) {', '.join(sorted(missing))}; expected path,label[,group]")
        for line_no, row in enumerate(reader, start=2):
            path, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
            if not path or not label:
                raise DataError(f"{csv_path}:{line_no}: empty path or label")
            full = Path(path) if Path(path).is_absolute() else base / path
            samples.append(Sample(str(full), label, (row.get("group") or "").strip()))
    classes = sorted({s.label for s in samples})
    bad = [{"path": s.path, "reason": "file not found"} for s in samples if not Path(s.path).is_file()]
    missing_paths = {b["path"] for b in bad}
    samples = [s for s in samples if s.path not in missing_paths]
    return Discovery(str(csv_path), "csv", classes, samples, bad, [])
