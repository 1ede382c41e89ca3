import numpy as np
import pytest

from leukoscope.data.synth import (
    SYNTH_CLASSES,
    load_cell_truth,
    synth_dataset,
    synth_field,
)


def test_deterministic_for_a_seed():
    a, cells_a = synth_field("Pro", np.random.default_rng([3, 1]), size=96)
    b, cells_b = synth_field("Pro", np.random.default_rng([3, 1]), size=96)
    assert np.array_equal(a, b) and cells_a == cells_b
    c, _ = synth_field("Pro", np.random.default_rng([4, 1]), size=96)
    assert not np.array_equal(a, c)


def test_dataset_layout_and_cell_truth(tmp_path):
    out = synth_dataset(tmp_path / "s", per_class=3, size=64, seed=0)
    for label in SYNTH_CLASSES:
        assert len(list((out / label).glob("*.jpg"))) == 3
    truth = load_cell_truth(out)
    assert len(truth) == 12 and all(1 <= len(cells) <= 3 for cells in truth.values())


def test_leukocytes_are_darker_than_background():
    img, cells = synth_field("Early", np.random.default_rng(0), size=224, n_cells=2)
    grey = img.mean(axis=2)
    for c in cells:
        assert grey[int(c.y), int(c.x)] < np.median(grey) - 40


def test_class_signal_is_in_the_cells():
    # mean leukocyte radius grows from Benign to Pro, background colour does not depend on class
    radii = {label: [] for label in SYNTH_CLASSES}
    plasma = {label: [] for label in SYNTH_CLASSES}
    for label in SYNTH_CLASSES:
        for i in range(20):
            img, cells = synth_field(label, np.random.default_rng([9, i]), size=96)
            radii[label] += [c.radius for c in cells]
            plasma[label].append(np.median(img.reshape(-1, 3), axis=0))
    means = [np.mean(radii[label]) for label in SYNTH_CLASSES]
    assert means == sorted(means)
    centres = np.array([np.mean(plasma[label], axis=0) for label in SYNTH_CLASSES])
    assert np.ptp(centres, axis=0).max() < 12


def test_other_lab_fields_keep_their_known_cells_and_scale():
    from leukoscope.cells.detect import detect_leukocytes
    from leukoscope.cells.ruler import measure_red_cells
    from leukoscope.data.shifts import OTHER_LABS
    from leukoscope.data.synth import RED_CELL_DIAMETER, other_lab_field, synth_field

    for lab in OTHER_LABS:
        found, truth, scales = 0, 0, []
        for i in range(6):
            rgb, cells = other_lab_field("Pre", np.random.default_rng([7, i]), lab, n_cells=2)
            home, _ = synth_field("Pre", np.random.default_rng([7, i]), int(round(224 * lab.zoom)), n_cells=2, magnification=lab.objective)
            assert rgb.shape == home.shape and np.abs(rgb.astype(int) - home).mean() > 3  # the same smear, imaged otherwise
            detected = detect_leukocytes(rgb, scale=lab.zoom * lab.objective)[0]
            truth += len(cells)
            found += sum(any(np.hypot(d.x - c.x, d.y - c.y) < c.radius for d in detected) for c in cells)
            ruler = measure_red_cells(rgb)
            if ruler is not None:
                scales.append(ruler.red_cell_px / (RED_CELL_DIAMETER * lab.zoom * lab.objective))
        assert found / truth >= 0.9, lab.name  # the detector still finds the leukocytes
        assert len(scales) >= 4 and np.median(scales) == pytest.approx(1.0, abs=0.08), lab.name  # and the ruler the pixel scale
