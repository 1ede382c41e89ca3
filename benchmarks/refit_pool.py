"""A cell bundle's attention pool fitted again under other pool settings, its trained cell model kept.

Usage: python benchmarks/refit_pool.py BUNDLE --out RUN_DIR [--data DATA] [-o cells.pool_subsample=0.5 ...]

The pool, its temperature, the abstain threshold and the screening cut are fitted after the cell model has
trained, on its frozen features (`engine.train.finalize`). This runs that last step again with the bundle's
own config, split and weights, and the overrides given (`cells.pool_subsample`, `eval.*`: nothing the cell
model's training read), and writes a bundle as `train` would have with those settings: a pool setting is
compared on the same weights in minutes instead of a training run per seed. Evaluate RUN_DIR/bundle as any other.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from leukoscope.engine.ensemble import bundle_run_data
from leukoscope.engine.train import finalize, record_run
from leukoscope.errors import LeukoscopeError
from leukoscope.scoring.bundle import load_bundle

POOL_SETTINGS = ("cells.pool_subsample=", "eval.")  # what finalize reads and the cell model's training does not


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--out", required=True, help="the new run folder (its bundle/ and metrics.json)")
    parser.add_argument("--data", help="the data root, where it moved since the bundle was trained")
    parser.add_argument("-o", "--override", action="append", default=[], help="a pool or eval setting, KEY=VALUE (repeatable)")
    args = parser.parse_args()
    if bad := [o for o in args.override if not o.startswith(POOL_SETTINGS)]:
        raise SystemExit(f"{bad[0]}: only the pool's and the evaluation's settings can change after training ({', '.join(POOL_SETTINGS)})")
    started = time.perf_counter()
    bundle = load_bundle(args.bundle)
    if not bundle.cell_level or bundle.mil is None:
        raise SystemExit(f"{args.bundle}: not a cell bundle with an attention pool (cells.aggregate: attention)")
    try:
        cfg, dm = bundle_run_data(bundle, args.data, args.override)
    except LeukoscopeError as exc:
        raise SystemExit(str(exc)) from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data_info = record_run(out, cfg, dm)
    training = {**bundle.meta.get("training", {}), "pool_refitted_from": {"bundle": str(bundle.path.resolve()), "weights_sha256": bundle.weights_sha256}}
    folder = finalize(cfg, bundle.model, dm, out, data_info, training)
    print(f"{folder} ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
