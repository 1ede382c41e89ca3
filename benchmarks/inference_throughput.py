"""Inference images per second: model-only vs end-to-end (decode + preprocess + model), per backend.

Usage: python benchmarks/inference_throughput.py [--bundle RUN/bundle] [--n 256]
Without --bundle, untrained models of the paper's size (vgg19_mhsa, 224 px) and of the cpu-fast recipe
(vgg19_bn_mhsa width 1/8, 224 px) are measured. Backends: torch fp32, torch channels_last, torch bf16
autocast, onnxruntime. End-to-end reads JPEG files from disk through Predictor.predict_paths, whose
preprocessing runs in threads one batch ahead of the model.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from leukoscope.config import Config, load_config
from leukoscope.data.synth import synth_dataset
from leukoscope.engine.bundle import load_bundle, write_bundle
from leukoscope.inference.export import OnnxRunner, export_bundle
from leukoscope.inference.predictor import Predictor
from leukoscope.inference.runner import run_model
from leukoscope.models import create_model


def _untrained_bundle(folder: Path, cfg: Config) -> Path:
    model = create_model(cfg.model.name, 4, **cfg.model.kwargs)
    return write_bundle(folder, model, ["Benign", "Early", "Pre", "Pro"], cfg.to_dict())


def _rate(fn, n: int, repeats: int = 2) -> float:
    fn()  # warm-up
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = max(best, n / (time.perf_counter() - start))
    return best


def measure(bundle_dir: Path, paths: list[str], batch: int) -> None:
    bundle = load_bundle(bundle_dir)
    images = np.stack([bundle.pipeline.load(p) for p in paths])
    n = len(paths)
    print(f"\n{bundle.meta['model']['name']} {bundle.meta['model']['kwargs']} at {bundle.input_size} px, {n} images, batch {batch}")
    model = bundle.model
    results = {}
    for name, cl, bf16 in (("torch fp32", False, False), ("torch channels_last", True, False), ("torch bf16", True, True)):
        model.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
        model_only = _rate(lambda: run_model(model, images, bundle.mean, bundle.std, batch, features=True, bf16=bf16), n)
        results[name] = model_only
        print(f"  {name:22s} model-only {model_only:8.1f} img/s")
    model.to(memory_format=torch.channels_last)
    predictor = Predictor(bundle, batch_size=batch)
    e2e = _rate(lambda: predictor.predict_paths(paths, progress=False), n)
    print(f"  {'torch channels_last':22s} end-to-end {e2e:8.1f} img/s  ({100 * e2e / results['torch channels_last']:.0f} % of model-only)")
    export_bundle(bundle, bundle_dir / "model.onnx", "onnx")
    runner = OnnxRunner(bundle_dir / "model.onnx", bundle.mean, bundle.std, batch)
    onnx_only = _rate(lambda: runner.run(images), n)
    onnx_e2e = _rate(lambda: Predictor(bundle, backend="onnx", batch_size=batch).predict_paths(paths, progress=False), n)
    print(f"  {'onnxruntime':22s} model-only {onnx_only:8.1f} img/s")
    print(f"  {'onnxruntime':22s} end-to-end {onnx_e2e:8.1f} img/s  ({100 * onnx_e2e / onnx_only:.0f} % of model-only)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bundle", action="append", help="bundle folder(s) to measure (default: paper-size and cpu-fast models)")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    data = synth_dataset(tmp / "data", per_class=max(1, args.n // 4), size=224, seed=0)
    paths = sorted(str(p) for p in data.rglob("*.jpg"))[: args.n]
    bundles = [Path(b) for b in args.bundle or []]
    if not bundles:
        paper = load_config("paper", ["data.root="])
        fast = load_config("cpu-fast", ["data.root="])
        bundles = [_untrained_bundle(tmp / "paper", paper), _untrained_bundle(tmp / "cpu-fast", fast)]
    for b in bundles:
        measure(b, paths if "paper" not in b.name else paths[: max(32, args.n // 8)], args.batch)


if __name__ == "__main__":
    main()
