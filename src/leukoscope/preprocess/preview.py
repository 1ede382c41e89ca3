"""A grid of each image after every preprocessing step: people look at this rather than read parameters."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from leukoscope.data.images import read_rgb  # noqa: E402
from leukoscope.io_utils import refuse_folder  # noqa: E402
from leukoscope.preprocess.pipeline import Pipeline  # noqa: E402


def save_preview(paths: list[str | Path], pipeline: Pipeline, out: str | Path) -> Path:
    out = refuse_folder(out)
    traces = [(Path(p).name, pipeline.trace(read_rgb(p, max_pixels=pipeline.config.max_pixels))) for p in paths]
    n_cols = len(traces[0][1])
    fig, axes = plt.subplots(len(traces), n_cols, figsize=(2.4 * n_cols, 2.5 * len(traces)), squeeze=False)
    for r, (name, trace) in enumerate(traces):
        for c, (step, img) in enumerate(trace):
            ax = axes[r][c]
            ax.imshow(img)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(step, fontsize=9)
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(out)
    return out
