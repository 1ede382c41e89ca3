import numpy as np

from leukoscope.cells.cache import crop_config
from leukoscope.cells.detect import detect_leukocytes
from leukoscope.cells.outline import cell_cores, move_outlines
from leukoscope.cells.stain import StainTarget
from leukoscope.config import CORE_STAIN, LEUKOCYTE_STAIN, STAIN_TARGETS, CellsConfig
from leukoscope.data.synth import synth_field


def test_a_transfer_fitted_on_the_cores_barely_moves_when_the_outlines_do():
    """Fitted on every leukocyte pixel, an outline 1 px tighter drops the pale rim from the statistics and
    the transfer recolours the whole cell; fitted on the cores, the cell keeps its colours (each fit to its own target)."""
    for seed in range(3):
        field, _ = synth_field("Pre", np.random.default_rng(seed), size=224, n_cells=3)
        cells, labels = detect_leukocytes(field)
        tighter = move_outlines(labels, np.full(int(labels.max()), -1.0))
        inside = tighter > 0
        moved = {}
        for fit in ("cells", "cores"):
            target = StainTarget.from_stats(STAIN_TARGETS[fit])
            before, after = (target.restain(field, l > 0, fit_on=cell_cores(l) if fit == "cores" else None) for l in (labels, tighter))
            moved[fit] = np.abs(before.astype(int) - after)[inside].mean()
        assert len(cells) >= 2 and moved["cores"] < 2.0 and moved["cells"] > 4.0, moved  # measured: 0.4-1.0 and 7.0-7.7 grey levels


def test_a_transfer_fitted_on_part_of_the_cells_moves_that_part_to_the_target_and_the_rest_alike():
    field, _ = synth_field("Benign", np.random.default_rng(4), size=224, n_cells=3)
    _, labels = detect_leukocytes(field)
    cores = cell_cores(labels)
    mild = (66.0, 20.0, -30.0, 9.0, 8.0, 10.0)  # in gamut for these cells: nothing clips
    out = StainTarget.from_stats(mild).restain(field, labels > 0, fit_on=cores)
    got = StainTarget(out[cores]).normalizer
    assert np.allclose(got.target_means, mild[:3], atol=1.5) and np.allclose(got.target_stds, mild[3:], rtol=0.12), (got.target_means, got.target_stds)
    rim = (labels > 0) & ~cores
    assert np.abs(out[rim].astype(int) - field[rim]).mean() > 2  # the rest of each cell moved with its core
    assert np.array_equal(out[labels == 0], field[labels == 0])  # nothing outside the cells


def test_each_stain_fit_moves_the_cells_to_its_own_target_unless_one_is_given():
    """The cores' spread is narrower than the whole cell's: the whole-cell target on the cores would stretch
    every cell's contrast twofold, so `cells.stain_fit` chooses the target when none is given."""
    assert crop_config(CellsConfig(stain="reinhard")).stain_target == LEUKOCYTE_STAIN
    assert crop_config(CellsConfig(stain="reinhard", stain_fit="cores")).stain_target == CORE_STAIN
    given = [60.0, 30.0, -40.0, 8.0, 8.0, 9.0]
    assert crop_config(CellsConfig(stain="reinhard", stain_fit="cores", stain_target=given)).stain_target == tuple(given)
    assert crop_config(CellsConfig(stain="as imaged", stain_fit="cores")).stain_target is None
    field, _ = synth_field("Pre", np.random.default_rng(1), size=224, n_cells=3)
    _, labels = detect_leukocytes(field)
    cores = cell_cores(labels)
    spreads = {}
    for fit, target in (("cells", LEUKOCYTE_STAIN), ("cores", CORE_STAIN)):
        out = StainTarget.from_stats(target).restain(field, labels > 0, fit_on=cores if fit == "cores" else None)
        spreads[fit] = StainTarget(out[labels > 0]).normalizer.target_stds
    assert np.all(spreads["cores"] < 1.5 * spreads["cells"]), spreads  # each fit with its own target: cells of a like contrast
