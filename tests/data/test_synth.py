import numpy as np

from leukoscope.data.synth import SYNTH_CLASSES, load_cell_truth, synth_dataset, synth_field


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
