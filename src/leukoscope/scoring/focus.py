"""The focus floor of a cell-level bundle: the least fine detail a field's cells may hold and still be called."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from leukoscope.cells.focus import field_detail


@dataclass
class FocusFloor:
    """A field whose cells hold less fine detail (cells/focus.py) than `floor` goes to review: a blur
    erases the chromatin that tells a lymphocyte from a blast, and the model then calls what is left.
    `floor` is the `quantile` of the training fields' detail; `fill` the constant around each cell."""

    floor: float
    quantile: float
    fill: int

    @classmethod
    def fit(cls, per_field_units: Sequence[np.ndarray], quantile: float, fill: int) -> FocusFloor | None:
        """From the training fields' model inputs (their cell crops); None when no field's cells can say."""
        if not 0 < quantile < 1:
            raise ValueError(f"a focus quantile lies between 0 and 1, not {quantile:g}")
        details = [d for units in per_field_units if (d := field_detail(units, fill)) is not None]
        return cls(float(np.quantile(details, quantile)), quantile, fill) if details else None

    def to_json(self) -> dict[str, Any]:
        return {"floor": round(self.floor, 5), "quantile": self.quantile, "fill": self.fill}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FocusFloor:
        return cls(float(d["floor"]), float(d["quantile"]), int(d["fill"]))
