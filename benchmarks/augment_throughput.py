"""What a training crop's augmentation costs against the model's training step on it, on this CPU.

Usage: LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 python benchmarks/augment_throughput.py [--config configs/cells.yaml] [--data DATA]

The cell recipe augments each crop on its loader workers (`data.num_workers`) while the model computes
on the cores they leave: on 2 cores the epoch is as slow as the costlier of the two.
Printed: ms per crop for each transform of the recipe's augmentation (random 8-bit crops of the
recipe's input size, the best of 3 passes), for torchvision's ColorJitter without and with its hue
(what the recipe used before `RandomColourJitter` and `RandomHue`), and for the model's forward,
backward and AdamW step (batch of the recipe's size, channels_last, the best of 5 steps after 3
warm-up steps; also in bf16 where the CPU computes it). With `--data`, the recipe's real training
loader on that dataset as well (its crop cache built first when absent), with the augmentation in the
training process and on one and two loader workers, the model on the threads training gives it: ms
per training crop (all its augmented views) over 40 batches of loading, augmenting and a training
step, after 5 warm-up batches.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torchvision.transforms import v2

from leukoscope.config import Config, load_config
from leukoscope.engine.precision import cpu_computes_bf16
from leukoscope.models import create_model
from leukoscope.preprocess.augment import build_augment


def ms_per_crop(transform: Callable[[torch.Tensor], torch.Tensor], crops: list[torch.Tensor]) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for crop in crops:
            transform(crop)
        best = min(best, (time.perf_counter() - started) / len(crops))
    return 1000 * best


def step_ms_per_crop(name: str, kwargs: dict, size: int, batch: int, bf16: bool = False) -> float:
    model = create_model(name, 4, **kwargs).train().to(memory_format=torch.channels_last)
    optimiser = torch.optim.AdamW(model.parameters(), 1e-3)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 4, (batch,))
    times = []
    for _ in range(8):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        times.append(time.perf_counter() - started)
    return 1000 * min(times[3:]) / batch


def loader_ms_per_crop(cfg: Config, data: str, workers: int, batches: int = 40) -> float:
    from leukoscope.engine.data import SmearDataModule
    from leukoscope.engine.train import compute_threads

    cfg.data.root, cfg.data.num_workers = data, workers
    dm = SmearDataModule(cfg)
    dm.setup()
    threads_before = torch.get_num_threads()
    torch.set_num_threads(compute_threads(cfg) or threads_before)  # as training sets them
    model = create_model(cfg.model.name, len(dm.classes), **cfg.model.kwargs).train().to(memory_format=torch.channels_last)
    optimiser = torch.optim.AdamW(model.parameters(), 1e-3)
    for i, (x, y) in enumerate(dm.train_dataloader()):
        if i == 5:
            started = time.perf_counter()
        x = dm.model_input(x, training=True)  # what training's batch hook does
        if x.dim() == 5:  # (N, views, C, H, W): train.consistency's augmented copies
            x, y = x.flatten(0, 1), y.repeat_interleave(x.shape[1])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cpu_computes_bf16()):
            loss = torch.nn.functional.cross_entropy(model(x.contiguous(memory_format=torch.channels_last)).float(), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if i == 4 + batches:
            break
    print(f"    ({workers} worker(s), the model on {torch.get_num_threads()} thread(s))")
    torch.set_num_threads(threads_before)
    return 1000 * (time.perf_counter() - started) / (batches * cfg.data.batch_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/cells.yaml")
    parser.add_argument("--crops", type=int, default=500)
    parser.add_argument("--data", help="also time the recipe's real training loader on this dataset")
    args = parser.parse_args()
    cfg = load_config(args.config)
    size = cfg.preprocess.size
    torch.manual_seed(0)
    crops = [torch.randint(0, 256, (3, size, size), dtype=torch.uint8) for _ in range(args.crops)]
    augment = build_augment(cfg.augment, outline_fill=255)
    print(f"{args.config}: {size} px crops, torch {torch.__version__}, {torch.get_num_threads()} threads")
    for transform in augment.transforms:
        print(f"  {type(transform).__name__:28} {ms_per_crop(transform, crops):7.3f} ms per crop")
    whole = ms_per_crop(augment, crops)
    print(f"  {'the whole augmentation':28} {whole:7.3f} ms per crop")
    a = cfg.augment
    before = ms_per_crop(v2.ColorJitter(a.brightness, a.contrast, a.saturation), crops)
    print(f"  {'torchvision ColorJitter':28} {before:7.3f} ms per crop (before RandomColourJitter)")
    before = ms_per_crop(v2.ColorJitter(a.brightness, a.contrast, a.saturation, a.hue), crops)
    print(f"  {'torchvision ColorJitter, hue':28} {before:7.3f} ms per crop (before RandomColourJitter and RandomHue)")
    step = step_ms_per_crop(cfg.model.name, dict(cfg.model.kwargs), size, cfg.data.batch_size)
    print(f"  {'training step':28} {step:7.3f} ms per crop (batch {cfg.data.batch_size})")
    if cpu_computes_bf16():
        step = step_ms_per_crop(cfg.model.name, dict(cfg.model.kwargs), size, cfg.data.batch_size, bf16=True)
        print(f"  {'training step, bf16':28} {step:7.3f} ms per crop (what train.precision auto takes on this CPU)")
    for workers in (0, 1, 2) if args.data else ():
        ms = loader_ms_per_crop(load_config(args.config), args.data, workers)
        print(f"  {f'loader + step, {workers} worker(s)':28} {ms:7.3f} ms per crop")


if __name__ == "__main__":
    main()
