"""Atomic file writes: a reader never sees a half-written output, and a crash leaves the old file."""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from leukoscope.errors import OutputError


def file_in_the_way(path: str | Path) -> Path | None:
    """The file, if any, that stands where one of `path`'s parent folders would have to be."""
    for parent in Path(path).parents:
        if parent.exists() or parent.is_symlink():
            return None if parent.is_dir() else parent
    return None


def refuse_file_parent(path: str | Path) -> Path:
    """`path` as an output; an OutputError when a parent is a file (mkdir would fail after the work)."""
    path = Path(path)
    blocker = file_in_the_way(path)
    if blocker is not None:
        raise OutputError(f"{path}: {blocker} is a file, not a folder; choose another output path")
    return path


def refuse_folder(path: str | Path) -> Path:
    """`path` as a file to write; an OutputError when a folder stands there (a rename would fail late)."""
    path = refuse_file_parent(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; name the file to write")
    return path


@contextmanager
def atomic_write(path: str | Path, mode: str = "w", **open_kwargs: Any) -> Iterator[IO]:
    """Write to a temporary file beside `path`, then rename over it only on success.

    The file is created with the permissions of any other new file (0666 less the umask), not the
    owner-only ones of `tempfile.mkstemp`: a lab's predictions are read by colleagues.
    """
    path = refuse_folder(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def report_left_out(left_out: Sequence[dict[str, str]], warnings: Sequence[str] = (), shown: int | None = None, listed_in: str | Path = "") -> None:
    """Tell the user (on stderr) which files a command skipped and why, then the data's warnings."""
    for bad in left_out[:shown]:
        print(f"left out: {bad['path']}: {bad['reason']}", file=sys.stderr)
    if shown is not None and len(left_out) > shown:
        print(f"left out: {len(left_out) - shown} more file(s), all listed in {listed_in}", file=sys.stderr)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_write(path) as fh:
        json.dump(obj, fh, indent=2, sort_keys=False, default=_json_default)
        fh.write("\n")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def save_npy_atomic(path: str | Path, array: Any) -> None:
    """np.save beside the target, then rename: concurrent cache writers never see half an array.

    The temporary name is unique per call, not per process: worker threads of one process write the
    same cache entry at once when a dataset holds exact duplicates.
    """
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, array, allow_pickle=False)
    os.replace(tmp, path)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes: names exactly which input a run used."""
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
