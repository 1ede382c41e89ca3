"""Parallel image work on threads of this process, not on forked worker processes.

A forked child inherits the parent's OpenCV and OpenMP thread pools with whatever locks their threads
held at that instant, and can hang at its first call into them (seen: a preprocessing worker stuck in
`cv2.setNumThreads` after the same process had synthesised images). Decoding, OpenCV, hashing and
most of NumPy release the GIL, so threads use both cores without that hazard, with no pickling, and
faster than processes on 2 cores (300 real fields: 404-457 vs 236-271 img/s preprocessing).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from leukoscope.progress import progress_bar

Item = TypeVar("Item")
Result = TypeVar("Result")


def parallel_map(fn: Callable[[Item], Result], items: Sequence[Item], workers: int, desc: str) -> list[Result]:
    """`fn` over `items` on up to `workers` threads, in input order, with a progress bar."""
    bar = progress_bar(len(items), desc)
    if workers <= 1:
        out = []
        for item in items:
            out.append(fn(item))
            bar.update()
        bar.close()
        return out
    with ThreadPoolExecutor(workers) as pool, bar:
        futures = [pool.submit(fn, item) for item in items]
        for f in futures:
            f.add_done_callback(lambda _: bar.update())
        return [f.result() for f in futures]
