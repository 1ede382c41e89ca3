"""Dynamic batching: the model inputs of concurrent requests go through the network together.

Each request prepares its own images on the server's thread pool (decoding, the paper's chain, cell
crops), then hands their units to one worker thread. The worker waits at most `max_wait` seconds
for other requests to join, up to `max_units` units, and classifies them all in one model call.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from leukoscope.inference.predictor import Predictor


@dataclass
class _Job:
    names: Sequence[str]
    units: Sequence[np.ndarray]
    done: threading.Event = field(default_factory=threading.Event)
    rows: list[dict[str, Any]] = field(default_factory=list)
    error: BaseException | None = None


class Batcher:
    def __init__(self, predictor: Predictor, model_lock: threading.Lock, max_units: int = 64, max_wait: float = 0.01) -> None:
        self.predictor, self.model_lock = predictor, model_lock
        self.max_units, self.max_wait = max_units, max_wait
        self.batches = 0  # model calls so far: how much batching happened
        self._jobs: queue.Queue[_Job] = queue.Queue()
        threading.Thread(target=self._serve, name="leukoscope-batcher", daemon=True).start()

    def predict(self, names: Sequence[str], units: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        """Prediction rows for one request's images (`units`: each image's model inputs), in order."""
        job = _Job(names, units)
        self._jobs.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.rows

    def _gather(self) -> list[_Job]:
        jobs = [self._jobs.get()]
        size = sum(len(u) for u in jobs[0].units)
        deadline = time.monotonic() + self.max_wait
        while size < self.max_units:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                job = self._jobs.get(timeout=left)
            except queue.Empty:
                break
            jobs.append(job)
            size += sum(len(u) for u in job.units)
        return jobs

    def _serve(self) -> None:
        while True:
            jobs = self._gather()
            try:
                with self.model_lock:
                    pred = self.predictor.predict_units([u for job in jobs for u in job.units])
                self.batches += 1
                rows = self.predictor.rows([name for job in jobs for name in job.names], pred)
                start = 0
                for job in jobs:
                    job.rows, start = rows[start : start + len(job.units)], start + len(job.units)
            except BaseException as exc:  # handed to every waiting request
                for job in jobs:
                    job.error = exc
            finally:
                for job in jobs:
                    job.done.set()
