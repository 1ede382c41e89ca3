import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from leukoscope.engine import precision
from leukoscope.engine.precision import cpu_computes_bf16, training_precision


def _cpu_flags() -> set[str] | None:
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        return None
    return {flag for line in cpuinfo.read_text().splitlines() if line.startswith("flags") for flag in line.split(":", 1)[1].split()}


def test_bf16_is_only_called_native_where_the_cpu_lists_it_among_its_flags():
    flags = _cpu_flags()
    if flags is None:
        pytest.skip("no /proc/cpuinfo to compare with")
    assert not cpu_computes_bf16() or flags & {"avx512_bf16", "amx_bf16"}


def test_without_the_avx512_kernels_bf16_is_emulated_whatever_the_cpu():
    code = "from leukoscope.engine.precision import cpu_computes_bf16; print(cpu_computes_bf16())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "ATEN_CPU_CAPABILITY": "default"}, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("native,expected", [(True, "bf16-mixed"), (False, "32-true")])
def test_auto_takes_bf16_on_a_cpu_only_where_it_computes_it(monkeypatch, native, expected):
    monkeypatch.setattr(precision, "cpu_computes_bf16", lambda: native)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for accelerator in ("auto", "cpu"):
        chosen = training_precision("auto", accelerator)
        assert (chosen.asked, chosen.used) == ("auto", expected) and chosen.why


@pytest.mark.parametrize("bf16,expected", [(True, "bf16-mixed"), (False, "16-mixed")])
def test_auto_on_a_gpu_takes_bf16_where_it_has_it_and_fp16_with_a_scaler_where_not(monkeypatch, bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: bf16)
    assert training_precision("auto", "auto").used == expected
    assert training_precision("auto", "gpu").used == expected


def test_an_explicit_precision_is_kept_and_emulated_bf16_is_warned_about(monkeypatch):
    monkeypatch.setattr(precision, "cpu_computes_bf16", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert training_precision("32-true", "cpu").used == "32-true"
    with pytest.warns(UserWarning, match="bf16 is emulated"):
        assert training_precision("bf16-mixed", "cpu").used == "bf16-mixed"
    monkeypatch.setattr(precision, "cpu_computes_bf16", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert training_precision("bf16-mixed", "cpu").used == "bf16-mixed"
