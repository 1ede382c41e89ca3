import threading

import numpy as np
import pytest

from leukoscope.data.synth import synth_field
from leukoscope.workers import parallel_map


def test_parallel_map_keeps_input_order_on_threads_of_this_process():
    seen: set[int] = set()

    def work(i: int) -> int:
        seen.add(threading.get_ident())
        rgb, _ = synth_field("Pre", np.random.default_rng(i), size=96)  # OpenCV work, as the real callers do
        return i * 10 + int(rgb.mean() > 0)

    assert parallel_map(work, list(range(12)), workers=2, desc="test") == [i * 10 + 1 for i in range(12)]
    assert threading.get_ident() not in seen  # the work ran on worker threads, not forked processes


def test_parallel_map_raises_the_first_failure():
    def work(i: int) -> int:
        if i == 3:
            raise ValueError("item 3 is bad")
        return i

    with pytest.raises(ValueError, match="item 3"):
        parallel_map(work, list(range(6)), workers=2, desc="test")
