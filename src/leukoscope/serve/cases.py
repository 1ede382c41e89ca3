"""The service's cases: held in memory, bounded in number and age, named by random identifiers.

Nothing a client sends is ever used as a path: a case is found by its identifier in this store,
and a cell by its number in that case.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict

from leukoscope.case.analyse import Case

DEFAULT_MAX_CASES = 32
DEFAULT_MAX_AGE_S = 4 * 3600.0


class CaseStore:
    def __init__(self, max_cases: int = DEFAULT_MAX_CASES, max_age_s: float = DEFAULT_MAX_AGE_S) -> None:
        self.max_cases, self.max_age_s = max_cases, max_age_s
        self._cases: OrderedDict[str, tuple[float, Case]] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()

    def add(self, case: Case) -> str:
        """Store a case under a new identifier; the oldest cases go when the store is full."""
        case_id = secrets.token_hex(8)
        with self._lock:
            self._expire()
            while len(self._cases) >= self.max_cases:
                self._cases.popitem(last=False)
            self._cases[case_id] = (time.monotonic(), case)
        return case_id

    def get(self, case_id: str) -> Case | None:
        with self._lock:
            self._expire()
            entry = self._cases.get(case_id)
            if entry is None:
                return None
            self._cases.move_to_end(case_id)
            self._cases[case_id] = (time.monotonic(), entry[1])
            return entry[1]

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._cases)

    def _expire(self) -> None:
        cutoff = time.monotonic() - self.max_age_s
        for case_id in [k for k, (used, _) in self._cases.items() if used < cutoff]:
            del self._cases[case_id]
