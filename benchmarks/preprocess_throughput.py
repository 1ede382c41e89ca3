"""Images per second of the default preprocessing chain at 224 px, one process and all cores.

Usage: python benchmarks/preprocess_throughput.py [DATA] [--n 1000]
DATA defaults to ../shared/data/taleqani-all/Original, or a synthetic set when that is absent.
Last line: images_per_second=<number> (default chain, all cores, decode included).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path

import cv2

from leukoscope.data.images import read_rgb
from leukoscope.preprocess import Pipeline

PIPELINE = Pipeline()


def _decode_and_preprocess(path: str) -> int:
    return PIPELINE(read_rgb(path)).shape[0]


def _preprocess_only(index: int) -> int:
    return PIPELINE(_DECODED[index % len(_DECODED)]).shape[0]


_DECODED: list = []


def _rate(fn, items, workers: int) -> float:
    start = time.perf_counter()
    if workers == 1:
        for it in items:
            fn(it)
    else:
        with get_context("fork").Pool(workers, initializer=cv2.setNumThreads, initargs=(1,)) as pool:
            start = time.perf_counter()
            for _ in pool.imap_unordered(fn, items, chunksize=32):
                pass
    return len(items) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "taleqani-all" / "Original"
    parser.add_argument("data", nargs="?", default=str(default))
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    data = Path(args.data)
    if not data.is_dir():
        from leukoscope.data.synth import synth_dataset

        data = synth_dataset(tempfile.mkdtemp(), per_class=max(1, args.n // 16), size=224)
    paths = sorted(str(p) for p in data.rglob("*.jpg"))
    paths = (paths * (args.n // max(1, len(paths)) + 1))[: args.n]
    _DECODED.extend(read_rgb(p) for p in paths[:200])
    cores = os.cpu_count() or 1
    print(f"data: {data} ({len(paths)} reads), cores: {cores}, chain: {[n for n, _ in PIPELINE.named_steps()]}")
    cv2.setNumThreads(1)
    results = {}
    for workers in (1, cores):
        results[("preprocess only", workers)] = _rate(_preprocess_only, list(range(len(paths))), workers)
        results[("decode + preprocess", workers)] = _rate(_decode_and_preprocess, paths, workers)
    for (what, workers), rate in results.items():
        print(f"{what:22s} {workers} process(es): {rate:8.0f} images/s")
    print(f"images_per_second={results[('decode + preprocess', cores)]:.0f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
