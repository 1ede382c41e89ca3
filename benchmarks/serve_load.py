"""Load test of `leukoscope serve`: N requests at C concurrent, with /healthz polled during the load.

Usage: python benchmarks/serve_load.py [--bundle RUN/bundle] [--requests 1000] [--concurrency 16] [--src OTHER/src]
Without --bundle, an untrained model of the cpu-fast recipe's size (vgg19_bn_mhsa width 1/8, 224 px)
is served. Each request uploads one synthetic 224-px JPEG field to /v1/predict. A process of its own asks
/healthz every 50 ms while the load runs. Prints errors, latency p50/p99, requests per second and the
/healthz latencies. `--src` runs the server from another checkout's `src/` (e.g. a `git worktree` of
an older commit) against the same bundle and load, for before/after figures.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np

from leukoscope.config import load_config
from leukoscope.data.synth import synth_field
from leukoscope.models import create_model
from leukoscope.scoring.bundle import write_bundle


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def poll_health(url: str, stop: Any, answers: Any) -> None:
    """Ask /healthz every 50 ms until `stop`, from a process of its own (the load's threads hold this one's GIL)."""
    health: list[float] = []
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            t = time.perf_counter()
            try:
                ok = client.get(f"{url}/healthz").status_code == 200
            except httpx.HTTPError:
                ok = False
            health.append(time.perf_counter() - t if ok else float("inf"))
            time.sleep(0.05)
    answers.put(health)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle")
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--src", help="run the server from this src/ folder instead of the installed package")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp())
    bundle = args.bundle
    if not bundle:
        cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "cpu-fast.yaml")
        model = create_model(cfg.model.name, 4, **cfg.model.kwargs)
        bundle = str(write_bundle(work / "bundle", model, ["Benign", "Early", "Pre", "Pro"], cfg.to_dict()))
    rng = np.random.default_rng(0)
    uploads = []
    for i in range(32):
        rgb, _ = synth_field(("Benign", "Early", "Pre", "Pro")[i % 4], rng, size=224)
        uploads.append(cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes())

    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(Path(args.src).resolve())) if args.src else None
    server = subprocess.Popen([sys.executable, "-m", "leukoscope.cli", "serve", bundle, "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        client = httpx.Client(timeout=60, limits=httpx.Limits(max_connections=args.concurrency + 2))

        def one(i: int) -> tuple[int, float]:
            t = time.perf_counter()
            try:
                r = client.post(f"{url}/v1/predict", files={"files": (f"field-{i}.jpg", uploads[i % len(uploads)], "image/jpeg")})
                status = r.status_code
            except httpx.HTTPError:
                status = -1
            return status, time.perf_counter() - t

        for i in range(20):  # warm-up
            one(i)
        ctx = multiprocessing.get_context("spawn")
        stop, answers = ctx.Event(), ctx.Queue()
        poller = ctx.Process(target=poll_health, args=(url, stop, answers))
        poller.start()
        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            results = list(pool.map(one, range(args.requests)))
        wall = time.perf_counter() - started
        stop.set()
        health = answers.get(timeout=30)
        poller.join()
    finally:
        server.terminate()
        server.wait(10)
    latencies = [1000 * t for s, t in results if s == 200]
    errors = sum(s != 200 for s, _ in results)
    health_ms = [1000 * t for t in health]
    print(f"server from {args.src or 'the installed package'}; bundle {bundle}")
    print(f"{args.requests} requests at {args.concurrency} concurrent: {errors} errors, {args.requests / wall:.1f} requests/s")
    print(f"latency ms: p50 {_percentile(latencies, 50):.0f}, p99 {_percentile(latencies, 99):.0f}, max {max(latencies, default=float('nan')):.0f}")
    print(
        f"/healthz during the load ({len(health_ms)} polls): p50 {statistics.median(health_ms):.1f} ms, p99 {_percentile(health_ms, 99):.1f} ms, "
        f"max {max(health_ms):.1f} ms (poll {health_ms.index(max(health_ms)) + 1}), over 100 ms: {sum(h > 100 for h in health_ms)}"
    )


if __name__ == "__main__":
    main()
