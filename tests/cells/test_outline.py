import cv2
import numpy as np

from leukoscope.cells.outline import cell_cores, jitter_outlines, move_outlines, moved_outline


def discs(centres: list[tuple[int, int]], radius: int, shape: tuple[int, int] = (120, 160)) -> np.ndarray:
    labels = np.zeros(shape, np.int32)
    for i, (x, y) in enumerate(centres, 1):
        cv2.circle(labels, (x, y), radius, i, -1)
    return labels


def equivalent_radius(mask: np.ndarray) -> float:
    return float(np.sqrt(mask.sum() / np.pi))


def test_an_outline_moves_by_the_distance_asked():
    cell = discs([(60, 60)], 12) > 0
    free = ~cell
    r0 = equivalent_radius(cell)
    for distance in (-2.5, -1.5, 1.5, 2.5):
        moved = moved_outline(cell, distance, free)
        assert abs(equivalent_radius(moved) - r0 - distance) < 0.5, distance
    assert np.array_equal(moved_outline(cell, 0.2, free), cell)  # less than half a pixel: no pixel centre crosses it
    dot = discs([(60, 60)], 1) > 0
    assert np.array_equal(moved_outline(dot, -4, ~dot), dot)  # a move that would erase the cell leaves it as it was


def test_a_field_s_outlines_move_together_each_by_a_little_more_or_less_and_no_cell_is_lost_or_overgrown():
    labels = discs([(30, 30), (100, 40), (60, 90)], 12)
    labels[discs([(52, 30)], 10) > 0] = 4  # touching cell 1
    before = {i: equivalent_radius(labels == i) for i in range(1, 5)}
    rng = np.random.default_rng(3)
    field = rng.uniform(-2.5, 2.5)
    draws = field + rng.uniform(-0.5, 0.5, 4)
    assert np.all(np.abs(draws - field) <= 0.5) and abs(field) > 0.5
    out = jitter_outlines(labels, np.random.default_rng(3), 2.5, cell_px=0.5)
    assert set(np.unique(out)) == {0, 1, 2, 3, 4}
    for i in (2, 3):  # free-standing cells: the drawn distance
        assert abs(equivalent_radius(out == i) - before[i] - draws[i - 1]) < 0.5
    grown = [i for i in range(1, 5) if draws[i - 1] > 0]
    for i in grown:  # a cell grows over background only, never over another cell
        assert np.all(np.isin(labels[out == i], [0, i]))
    assert not np.array_equal(out, labels)
    assert np.array_equal(jitter_outlines(labels, np.random.default_rng(3), 2.5), out)  # seeded: the same outlines
    assert np.array_equal(jitter_outlines(labels, np.random.default_rng(3), 0.0), labels)


def test_a_cell_s_core_is_its_inner_part_and_an_outline_moved_by_a_pixel_barely_changes_it():
    labels = discs([(40, 60), (110, 60)], 14)
    cores = cell_cores(labels)
    for i in (1, 2):
        assert abs(equivalent_radius(cores & (labels == i)) - 7.5) < 1.0  # the inner half of a 14 px radius, by depth
    for distance in (-1.0, 1.0):
        moved = cell_cores(move_outlines(labels, np.full(2, distance)))
        assert (moved & cores).sum() / (moved | cores).sum() > 0.75


def test_outline_changes_match_cells_by_their_centres_and_measure_how_far_the_outlines_moved():
    from leukoscope.cells.detect import Cell
    from leukoscope.cells.outline import outline_changes

    centres = [(40, 50), (110, 60)]
    labels = discs(centres, 12)
    cells = [Cell(float(x), float(y), 12.0, (x - 12, y - 12, x + 13, y + 13), int((labels == i).sum())) for i, (x, y) in enumerate(centres, 1)]
    grown = move_outlines(labels, np.full(len(cells), 1.0))
    changes, ious = outline_changes((cells, labels), (cells, grown), match_px=3.0)
    expected = [equivalent_radius(grown == i) - equivalent_radius(labels == i) for i in (1, 2)]
    assert len(changes) == 2 and np.allclose(changes, expected) and (changes > 0.75).all()
    assert (ious < 1).all() and (ious > 0.8).all()
    far = [Cell(c.x + 10, c.y, c.radius, c.box, c.area) for c in cells]  # centres 10 px away: no cell found again
    assert len(outline_changes((cells, labels), (far, grown), match_px=3.0)[0]) == 0
