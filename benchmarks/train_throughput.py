"""Training images per second for candidate models: fp32, channels_last, bf16 autocast.

Usage: LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 python benchmarks/train_throughput.py
       python benchmarks/train_throughput.py --device cuda --models paper     # the 224 px recipes on a GPU
       python benchmarks/train_throughput.py --models cells --batch 64        # configs/cells.yaml's model and batch
Each line: model, input size, precision, memory format, images/s (forward + backward + AdamW step,
batch 32, random data, after 3 warm-up steps). First, what `train.precision: auto` chooses on this machine.
"""

from __future__ import annotations

import argparse
import time

import torch

from leukoscope.config import load_config
from leukoscope.engine.precision import training_precision
from leukoscope.models import create_model

CANDIDATES = [
    ("vgg19_bn_mhsa", 96, {"width": 0.25, "input_size": 96}),
    ("vgg19_bn_mhsa", 96, {"width": 0.125, "input_size": 96}),
    ("vgg19_bn_mhsa", 112, {"width": 0.125, "input_size": 224}),
    ("vgg19_bn_mhsa", 128, {"width": 0.25, "input_size": 128}),
    ("resnet18", 96, {}),
]
PAPER = [
    ("vgg19_mhsa", 224, {"heads": 8, "head_hidden": 256, "input_size": 224}),
    ("resnet101", 224, {}),
]


def rate(name: str, size: int, kwargs: dict, bf16: bool, channels_last: bool, device: torch.device, batch: int = 32, steps: int = 8) -> float:
    torch.manual_seed(0)
    model = create_model(name, 4, **kwargs).train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device, memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 4, (batch,), device=device)
    for i in range(steps + 3):
        if i == 3:
            synchronize(device)
            start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    synchronize(device)
    return batch * steps / (time.perf_counter() - start)


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that a timer measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--models", choices=("cpu", "paper", "cells"), default="cpu", help="the CPU recipes' candidates, the paper's 224 px models, or configs/cells.yaml's")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per line")
    parser.add_argument("--batch", type=int, default=32, help="images per step")
    args = parser.parse_args()
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"threads {torch.get_num_threads()}, CPU capability {torch.backends.cpu.get_cpu_capability()}"
    chosen = training_precision("auto", "gpu" if device.type == "cuda" else "cpu")
    print(f"torch {torch.__version__}, {where}; train.precision auto: {chosen.used} ({chosen.why})")
    cells = load_config("cells", ["data.root="]).model
    models = {"cpu": CANDIDATES, "paper": PAPER, "cells": [(cells.name, cells.kwargs["input_size"], cells.kwargs)]}[args.models]
    for name, size, kwargs in models:
        for bf16, cl in ((False, False), (False, True), (True, True)):
            r = rate(name, size, kwargs, bf16, cl, device, batch=args.batch, steps=args.steps)
            print(f"{name:14s} {str(kwargs):40s} {size:4d}px  {'bf16' if bf16 else 'fp32'}  {'channels_last' if cl else 'contiguous   '}  {r:7.1f} img/s", flush=True)


if __name__ == "__main__":
    main()
