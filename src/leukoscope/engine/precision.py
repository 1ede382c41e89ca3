"""The numeric precision a run trains in, where the config leaves it to the machine (`train.precision: auto`).

On a CPU with AVX-512 BF16, bf16 autocast trains the cell recipe in 26 min instead of 30-34, with the same
figures over two seeds (BENCHMARKS.md, issue 17, "bf16 on a CPU that has it"). On a CPU without it bf16 is
emulated: on an AMD EPYC with AVX2 only, the recipe's model trained 9.2x slower in bf16 than in fp32, and a
training step took about 2 s instead of 0.48 (BENCHMARKS.md, thirty-second session). So `auto` takes bf16 only
where the hardware computes it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

AUTO = "auto"


@dataclass(frozen=True)
class Precision:
    """What a run trains in, and why: recorded beside the run, since `auto` depends on the machine."""

    asked: str
    used: str
    why: str


def cpu_computes_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic (AVX-512 BF16 or AMX) and PyTorch's AVX-512 kernels use it.

    `ATEN_CPU_CAPABILITY=default` (or AVX2) turns those kernels off, and bf16 is then emulated too."""
    if torch.backends.cpu.get_cpu_capability() != "AVX512":
        return False
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(probe is not None and probe() for probe in probes)


def on_cuda(accelerator: str) -> bool:
    """Whether Lightning will train on a CUDA GPU with this `train.accelerator`."""
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def training_precision(asked: str, accelerator: str) -> Precision:
    """`asked` as it is, unless it is `auto`: then bf16 where the CPU or GPU computes it, fp16 with a loss scaler on
    a GPU without bf16, fp32 otherwise. Asking for bf16 on a CPU that only emulates it is allowed, with a warning."""
    if asked != AUTO:
        if asked.startswith("bf16") and not on_cuda(accelerator) and not cpu_computes_bf16():
            warnings.warn(
                f"train.precision={asked}: no bf16 arithmetic in use (AVX-512 BF16 or AMX, with PyTorch's AVX-512 kernels), so bf16 is emulated and "
                "trains about ten times slower than 32-true; train.precision=auto chooses for the machine",
                stacklevel=2,
            )
        return Precision(asked, asked, "asked for")
    if on_cuda(accelerator):
        if torch.cuda.is_bf16_supported():
            return Precision(asked, "bf16-mixed", "the GPU computes bf16")
        return Precision(asked, "16-mixed", "the GPU has no bf16: fp16 with a loss scaler")
    if accelerator not in ("cpu", "auto"):
        return Precision(asked, "32-true", f"accelerator {accelerator!r}: fp32, the precision every accelerator has")
    if cpu_computes_bf16():
        return Precision(asked, "bf16-mixed", "the CPU computes bf16 (AVX-512 BF16 or AMX)")
    return Precision(asked, "32-true", "no bf16 arithmetic in use (AVX-512 BF16 or AMX, with PyTorch's AVX-512 kernels): emulated, bf16 trains about ten times slower")
