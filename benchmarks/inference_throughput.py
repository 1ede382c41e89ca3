"""Inference images per second: model-only vs end-to-end (decode + preprocess + model), per backend.

Usage: python benchmarks/inference_throughput.py [--bundle RUN/bundle] [--n 256] [--images FOLDER]
Without --bundle, untrained models of the paper's size (vgg19_mhsa, 224 px) and of the cpu-fast recipe
(vgg19_bn_mhsa width 1/8, 224 px) are measured. Backends: torch fp32, torch channels_last, torch bf16
autocast, onnxruntime. End-to-end reads JPEG files (synthetic 224 px fields unless --images) from disk
through Predictor.predict_paths (two workers, each decoding, preprocessing and classifying alternate
batches on half the cores). Model-only and end-to-end runs are interleaved and the median of --rounds
is printed. Last, where the time of one worker goes: milliseconds per image of each stage on one
thread (onnxruntime), and the ceiling those costs put on the end-to-end rate of each backend.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from leukoscope.config import Config, load_config
from leukoscope.data.images import read_rgb
from leukoscope.data.synth import synth_dataset
from leukoscope.inference.export import OnnxRunner, export_bundle
from leukoscope.inference.predictor import Predictor
from leukoscope.models import create_model
from leukoscope.scoring.bundle import load_bundle, write_bundle
from leukoscope.scoring.runner import run_model


def _untrained_bundle(folder: Path, cfg: Config) -> Path:
    model = create_model(cfg.model.name, 4, **cfg.model.kwargs)
    return write_bundle(folder, model, ["Benign", "Early", "Pre", "Pro"], cfg.to_dict())


def _rates(fns: dict[str, Callable[[], object]], n: int, rounds: int) -> dict[str, float]:
    """Median images/s of each function over `rounds` interleaved runs after one warm-up each.

    Interleaving puts every variant through the same moments of a shared, noisy machine, so the
    ratios printed are measured side by side rather than minutes apart.
    """
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(n / (time.perf_counter() - start))
    return {name: float(np.median(v)) for name, v in times.items()}


def measure(bundle_dir: Path, paths: list[str], batch: int, rounds: int) -> dict[str, float]:
    """Prints and returns the model-only rate of torch (channels_last) and onnxruntime."""
    bundle = load_bundle(bundle_dir)
    images = np.stack([bundle.pipeline.load(p) for p in paths])
    n = len(paths)
    print(f"\n{bundle.meta['model']['name']} {bundle.meta['model']['kwargs']} at {bundle.input_size} px, {n} images, batch {batch}, median of {rounds}")
    model = bundle.model
    for name, cl, bf16 in (("torch fp32", False, False), ("torch bf16", True, True)):
        model.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
        rate = _rates({name: lambda: run_model(model, images, bundle.mean, bundle.std, batch, features=True, bf16=bf16)}, n, rounds)[name]
        print(f"  {name:22s} model-only {rate:8.1f} img/s")
    model.to(memory_format=torch.channels_last)
    export_bundle(bundle, bundle_dir / "model.onnx", "onnx")
    runner = OnnxRunner(bundle_dir / "model.onnx", bundle.mean, bundle.std, batch)
    torch_predictor = Predictor(bundle, batch_size=batch)
    onnx_predictor = Predictor(bundle, backend="onnx", batch_size=batch)
    rates = _rates(
        {
            "torch model-only": lambda: run_model(model, images, bundle.mean, bundle.std, batch, features=True),
            "torch end-to-end": lambda: torch_predictor.predict_paths(paths, progress=False),
            "onnx model-only": lambda: runner.run(images),
            "onnx end-to-end": lambda: onnx_predictor.predict_paths(paths, progress=False),
        },
        n,
        rounds,
    )
    for backend, label in (("torch", "torch channels_last"), ("onnx", "onnxruntime")):
        only, e2e = rates[f"{backend} model-only"], rates[f"{backend} end-to-end"]
        print(f"  {label:22s} model-only {only:8.1f} img/s")
        print(f"  {label:22s} end-to-end {e2e:8.1f} img/s  ({100 * e2e / only:.0f} % of model-only)")
    return {"torch": rates["torch model-only"], "onnx": rates["onnx model-only"]}


def stage_costs(bundle_dir: Path, paths: list[str], batch: int, rounds: int, model_only: dict[str, float]) -> None:
    """Per-image milliseconds of each stage of one end-to-end worker, on one thread, and the ceiling they set.

    On 2 cores, however decoding and preprocessing overlap the model, the end-to-end rate cannot exceed
    2 / (the model's per-image time in each of two one-thread workers + the rest of the work): printed
    per backend next to the model-only rate it is held to.
    """
    import cv2

    threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        predictor = Predictor(load_bundle(bundle_dir), backend="onnx", batch_size=batch)
        bundle = predictor.bundle
        onnx = predictor._onnx.with_threads(1)
        rgbs = [read_rgb(p) for p in paths]
        units = [predictor.units(r) for r in rgbs]
        prepared = np.concatenate(units)
        batches = range(0, len(paths), batch)
        stages = {
            "decode": lambda: [read_rgb(p) for p in paths],
            "prepare (chain + leukocyte check)": lambda: [predictor.units(r) for r in rgbs],
            "model": lambda: [onnx.run(prepared[i : i + batch]) for i in batches],
            "model + flags (OOD, calibration)": lambda: [predictor.predict_units(units[i : i + batch], onnx) for i in batches],
            "end-to-end": lambda: [predictor._predict_batch(paths[i : i + batch], onnx) for i in batches],
        }
        rates = _rates(stages, len(paths), rounds)
        bundle.model.to(memory_format=torch.channels_last)
        pair = {
            "onnx": _in_two_threads(stages["model"]),
            "torch": _in_two_threads(lambda: run_model(bundle.model, prepared, bundle.mean, bundle.std, batch, features=True)),
            "end-to-end": _in_two_threads(stages["end-to-end"]),
        }
        pair_rates = _rates(pair, 2 * len(paths), rounds)
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv2_threads)
    print("  one worker, one thread, onnxruntime (ms per image):")
    for name, rate in rates.items():
        print(f"    {name:36s} {1000 / rate:7.2f}")
    print(f"  two such workers at once: end-to-end {pair_rates['end-to-end']:.1f} img/s")
    rest_ms = 1000 / rates["end-to-end"] - 1000 / rates["model"]
    print(f"  the ceiling on 2 cores with {rest_ms:.2f} ms of work besides the model per image:")
    for backend, label in (("torch", "torch channels_last"), ("onnx", "onnxruntime")):
        model_ms = 2000 / pair_rates[backend]  # per image, in each of two one-thread workers
        ceiling = 2000 / (model_ms + rest_ms)
        budget_ms = 2000 / (0.9 * model_only[backend]) - model_ms
        print(
            f"    {label:22s} model {model_ms:.2f} ms in each of two workers -> at most {ceiling:6.1f} img/s,"
            f" {100 * ceiling / model_only[backend]:.0f} % of model-only {model_only[backend]:.1f};"
            f" 90 % leaves {budget_ms:.2f} ms for the rest"
        )


def _in_two_threads(fn: Callable[[], object]) -> Callable[[], None]:
    """Run fn in two threads at once, each on one torch thread (what predict_paths' workers do)."""
    import threading

    def one() -> None:
        torch.set_num_threads(1)
        fn()

    def both() -> None:
        workers = [threading.Thread(target=one) for _ in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    return both


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bundle", action="append", help="bundle folder(s) to measure (default: paper-size and cpu-fast models)")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timed runs per variant (median reported)")
    parser.add_argument("--images", help="a folder of JPEG fields to read instead of synthetic ones (--n of them, spread over the sorted list)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    data = Path(args.images) if args.images else synth_dataset(tmp / "data", per_class=max(1, args.n // 4), size=224, seed=0)
    found = sorted(str(p) for p in data.rglob("*.jpg"))
    paths = found[:: max(1, len(found) // args.n)][: args.n]  # spread over every class folder
    if len(paths) < args.n:
        parser.error(f"{data}: {len(paths)} JPEG files, --n asks for {args.n}")
    bundles = [Path(b) for b in args.bundle or []]
    if not bundles:
        paper = load_config("paper", ["data.root="])
        fast = load_config("cpu-fast", ["data.root="])
        bundles = [_untrained_bundle(tmp / "paper", paper), _untrained_bundle(tmp / "cpu-fast", fast)]
    for b in bundles:
        subset = paths if "paper" not in b.name else paths[: max(32, args.n // 8)]
        model_only = measure(b, subset, args.batch, args.rounds)
        stage_costs(b, subset, args.batch, args.rounds, model_only)


if __name__ == "__main__":
    main()
