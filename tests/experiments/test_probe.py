import pytest

from leukoscope.data.synth import synth_dataset
from leukoscope.experiments.probe import run_background_probe


@pytest.mark.trains
@pytest.mark.parametrize("shortcut,expect_high", [(None, False), ("background", True)])
def test_background_probe_near_chance_without_signal_high_with_planted_one(tmp_path, shortcut, expect_high):
    data = synth_dataset(tmp_path / "d", per_class=20, size=128, seed=2, shortcut=shortcut)
    r = run_background_probe(data, patch=32, per_image=8, epochs=10, seed=0)
    if expect_high:
        assert r["accuracy"] >= 0.85  # chance is about 0.25
    else:
        assert r["accuracy_ci"][0] <= r["chance"] + 0.1 and r["accuracy"] < 0.5
