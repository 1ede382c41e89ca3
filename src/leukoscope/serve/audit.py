"""The service's audit trail: one JSON line per API request, appended so that a crash leaves whole lines.

A line records when, which endpoint, the bundle's weights hash, each upload's name and SHA-256 (never
the image), the result or the error, and the duration. Each line is one `write` on a file opened for
appending, under a lock: lines from concurrent requests never interleave.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from leukoscope.io_utils import refuse_folder


class AuditLog:
    def __init__(self, path: str | Path) -> None:
        self.path = refuse_folder(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self._lock = threading.Lock()

    def write(self, entry: dict[str, Any]) -> None:
        line = json.dumps({"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), **entry}, default=str) + "\n"
        with self._lock:
            os.write(self._fd, line.encode())

    def close(self) -> None:
        os.close(self._fd)
