import numpy as np

from leukoscope.preprocess.suppressed_crop import cell_pixels


def test_the_cell_is_every_pixel_not_the_fill_in_all_three_channels():
    fill = 128
    crop = np.full((8, 8, 3), fill, np.uint8)
    crop[2:5, 3:6] = (90, 40, 160)  # a stained nucleus
    crop[6, 1] = (fill, fill, 127)  # the fill's level in two channels: still the cell's
    crop[0, 7] = (fill + 1, fill, fill)
    expected = np.zeros((8, 8), bool)
    expected[2:5, 3:6] = expected[6, 1] = expected[0, 7] = True
    np.testing.assert_array_equal(cell_pixels(crop, fill), expected)
    assert not cell_pixels(np.full((4, 4, 3), 7, np.uint8), 7).any() and cell_pixels(np.full((4, 4, 3), 7, np.uint8), 8).all()
