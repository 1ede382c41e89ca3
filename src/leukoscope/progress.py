"""Progress that a person can read: a live bar on a terminal, a line per 10 % in a log file.

tqdm redraws its bar with carriage returns, which turn a redirected log (`train ... > train.log`)
into a wall of half-lines; when stderr is not a terminal, whole lines are written instead.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from tqdm.auto import tqdm

Item = TypeVar("Item")


def on_terminal() -> bool:
    return sys.stderr.isatty()


class LineProgress:
    """tqdm's `update`/`close` for a log: 'desc: 30 % (300/1000 img, 12.1 s)' at each tenth, or
    only the last line for a job too small to need more."""

    SMALL = 100

    def __init__(self, total: int, desc: str, unit: str = "img") -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.n, self._next_tenth, self._start = 0, 1 if total >= self.SMALL else 10, time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.n += n
        while self.total and self._next_tenth <= 10 and self.n * 10 >= self._next_tenth * self.total:
            elapsed = time.perf_counter() - self._start
            print(f"{self.desc}: {self._next_tenth * 10} % ({self.n}/{self.total} {self.unit}, {elapsed:.1f} s)", file=sys.stderr, flush=True)
            self._next_tenth += 1

    def close(self) -> None:
        pass

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress_bar(total: int, desc: str, unit: str = "img", disable: bool = False) -> Any:
    """A live bar on a terminal, whole lines per 10 % otherwise; nothing at all when disabled."""
    if disable or not on_terminal():
        return LineProgress(total if not disable else 0, desc, unit)
    return tqdm(total=total, desc=desc, unit=unit, leave=False)


def progress(items: Sequence[Item], desc: str, unit: str = "img") -> Iterator[Item]:
    """Iterate `items` with `progress_bar`."""
    with progress_bar(len(items), desc, unit) as bar:
        for item in items:
            yield item
            bar.update()
