"""The red-cell ruler: the field's scale from its red cells, and crops that keep a cell's absolute size."""

import cv2
import numpy as np
import pytest

from leukoscope.cells.crops import CropConfig, field_crops
from leukoscope.cells.ruler import SCALE_TOLERANCE, Ruler, estimate_pixel_scale, local_thickness, measure_red_cells, training_scale
from leukoscope.data.shifts import field_stop, vignette
from leukoscope.data.synth import RED_CELL_DIAMETER, synth_field


@pytest.mark.parametrize("zoom", [0.7, 1.0, 1.5, 2.0])
def test_the_ruler_recovers_a_known_magnification(zoom):
    # the same smear seen at `zoom` x the resolution: red cells RED_CELL_DIAMETER x zoom px across
    size = int(round(224 * zoom))
    ratios = []
    for i in range(8):
        rgb, _ = synth_field("Pre", np.random.default_rng([9, i]), size=size)
        ruler = measure_red_cells(rgb)
        if ruler is not None:
            ratios.append(ruler.red_cell_px / (RED_CELL_DIAMETER * size / 224))
    assert len(ratios) >= 6  # most fields can be measured
    assert np.median(ratios) == pytest.approx(1.0, abs=0.05)


def _ruler_ratios(label, seed, camera):
    """Six synthetic fields' red-cell diameters as `camera` records them, over the same fields' as drawn."""
    ratios = []
    for i in range(6):
        rgb, _ = synth_field(label, np.random.default_rng([seed, i]), size=224)
        plain, recorded = measure_red_cells(rgb), measure_red_cells(camera(rgb))
        if plain is not None and recorded is not None:
            ratios.append(recorded.red_cell_px / plain.red_cell_px)
    return ratios


@pytest.mark.parametrize("radius", [0.5, 0.6])
def test_black_corners_beyond_a_field_stop_are_not_red_cells(radius):
    # a camera that sees the round field stop: its black corners are darker in green than the plasma too
    ratios = _ruler_ratios("Benign", 11, lambda rgb: field_stop(rgb, radius))
    assert len(ratios) >= 5 and np.median(ratios) == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("corner", [0.6, 0.4])
def test_vignetting_does_not_move_the_ruler(corner):
    # the plasma darkens towards the corners: where it is as dark as red cells, Otsu took it for them
    ratios = _ruler_ratios("Early", 12, lambda rgb: vignette(rgb, corner))
    assert len(ratios) >= 5 and np.median(ratios) == pytest.approx(1.0, abs=0.05)


def test_a_field_vignetted_to_one_dark_region_is_measured_without_failing():
    # corners at 40 % of the centre's light: the darkened plasma and the red cells formed one region, whose
    # 90th percentile of the ridge shrank the mask to nothing, and OpenCV's resize failed
    rgb, _ = synth_field("Early", np.random.default_rng([12, 0]), size=224)
    mask = np.zeros((224, 224), np.uint8)
    mask[:, 20:] = 1  # the frame is not background to the distance transform: its ridge lies far out
    thickness = local_thickness(mask)
    assert thickness.shape == mask.shape and (thickness[mask > 0] > 0).all()
    measure_red_cells(vignette(rgb, 0.4))  # measured or not, without an error


def test_a_dark_field_has_no_red_cells_to_measure():
    rgb, _ = synth_field("Pre", np.random.default_rng(5), size=224)
    assert measure_red_cells((rgb // 40).astype(np.uint8)) is None  # all of it beyond any field stop's level


def test_a_field_without_red_cells_has_no_ruler_and_crops_fall_back_to_the_cell():
    rgb, _ = synth_field("Pro", np.random.default_rng(3), size=224, n_cells=2)
    plasma = np.full_like(rgb, (236, 231, 230))
    assert measure_red_cells(plasma) is None
    leukocytes_only = rgb.copy()
    mask = (rgb.astype(int)[..., 0] - rgb[..., 2]) > 12  # paint the pink red cells out
    leukocytes_only[mask] = (236, 231, 230)
    found = field_crops(leukocytes_only, CropConfig(size=64, scale="red_cell"))
    assert found.cells and found.scaled_by == "cell diameter" and found.red_cell_px is None


def _cell_share(crop):
    """The share of a crop covered by the (unsuppressed) cell: everything not the constant fill."""
    return float((np.abs(crop.astype(int) - 128).sum(axis=2) > 0).mean())


def test_ruler_crops_of_one_cell_at_two_magnifications_agree_and_keep_its_size():
    rgb, _ = synth_field("Pro", np.random.default_rng(11), size=224, n_cells=1)
    double = cv2.resize(rgb, (448, 448), interpolation=cv2.INTER_CUBIC)
    config = CropConfig(size=64, scale="red_cell")
    one, two = field_crops(rgb, config), field_crops(double, config)
    assert one.scaled_by == two.scaled_by == "red cells"
    assert two.red_cell_px / one.red_cell_px == pytest.approx(2.0, rel=0.05)
    assert len(one.crops) == len(two.crops) == 1
    assert np.abs(one.crops[0].astype(int) - two.crops[0]).mean() < 12  # the same crop, up to resampling
    # absolute size is kept: a hematogone fills less of its crop than a pro-B blast
    small, _ = synth_field("Benign", np.random.default_rng(11), size=224, n_cells=1)
    big_share, small_share = _cell_share(one.crops[0]), _cell_share(field_crops(small, config).crops[0])
    assert big_share > 2 * small_share
    own = CropConfig(size=64, scale="cell")  # sized by its own diameter, every cell fills its crop alike
    assert _cell_share(field_crops(rgb, own).crops[0]) == pytest.approx(_cell_share(field_crops(small, own).crops[0]), rel=0.25)


def test_pixel_size_crops_keep_the_cell_s_size_whatever_the_field_s_own_red_cells_show():
    from leukoscope.cells.ruler import DEVELOPMENT_RED_CELL_PX

    rgb, _ = synth_field("Pro", np.random.default_rng(11), size=224, n_cells=1)
    config = CropConfig(size=64, scale="pixel_size")
    one = field_crops(rgb, config)
    assert one.scaled_by == "pixel size" and one.red_cell_px == DEVELOPMENT_RED_CELL_PX
    double = field_crops(cv2.resize(rgb, (448, 448), interpolation=cv2.INTER_CUBIC), config)  # twice the view's pixels
    assert double.red_cell_px == 2 * DEVELOPMENT_RED_CELL_PX
    assert np.abs(one.crops[0].astype(int) - double.crops[0]).mean() < 4  # the same crop, up to resampling (1.3 measured)
    # the field's red cells painted out: the field's ruler has nothing to measure, the pixel size still sizes the crop
    no_red_cells = rgb.copy()
    no_red_cells[(rgb.astype(int)[..., 0] - rgb[..., 2]) > 12] = (236, 231, 230)
    assert field_crops(no_red_cells, CropConfig(size=64, scale="red_cell")).scaled_by == "cell diameter"
    plain = field_crops(no_red_cells, config)
    assert plain.scaled_by == "pixel size" and np.abs(plain.crops[0].astype(int) - one.crops[0]).mean() < 1
    small, _ = synth_field("Benign", np.random.default_rng(11), size=224, n_cells=1)
    assert _cell_share(one.crops[0]) > 2 * _cell_share(field_crops(small, config).crops[0])  # a hematogone stays smaller
    # a single cell enlarged 4x, taken for a field of view, measures 9 training red cells across: cut by its own diameter
    cell = one.cells[0]
    r = int(cell.radius * 1.6)
    window = rgb[max(0, int(cell.y) - r) : int(cell.y) + r, max(0, int(cell.x) - r) : int(cell.x) + r]
    enlarged = cv2.resize(window, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    assert field_crops(enlarged, config).scaled_by == "cell diameter"


def test_local_thickness_gives_every_pixel_of_a_disc_its_diameter_when_discs_overlap_or_the_frame_cuts_them():
    mask = np.zeros((200, 200), np.uint8)
    for centre in [(60, 60), (90, 70), (190, 150)]:  # two overlapping discs, and one the frame cuts in half
        cv2.circle(mask, centre, 20, 1, -1)
    thickness = local_thickness(mask)
    assert np.all(thickness[mask == 0] == 0)
    for centre in [(60, 60), (90, 70), (190, 150)]:
        disc = np.zeros_like(mask)
        cv2.circle(disc, centre, 18, 1, -1)  # the disc less its outline's rasterisation
        values = thickness[(disc > 0)]
        assert np.median(values) == pytest.approx(41, rel=0.05) and np.percentile(values, 5) > 0.85 * 41
    edge = np.zeros((100, 100), np.uint8)
    cv2.circle(edge, (50, 99), 20, 1, -1)  # its centre on the frame: half of it in view, measured whole
    assert np.median(local_thickness(edge)[edge > 0]) == pytest.approx(41, rel=0.05)
    sliver = np.zeros((100, 100), np.uint8)
    cv2.circle(sliver, (50, 109), 20, 1, -1)  # its centre out of view: 11 px of it seen, measured about twice that
    assert np.median(local_thickness(sliver)[sliver > 0]) == pytest.approx(22, rel=0.1)
    large = np.zeros((600, 600), np.uint8)  # an oil objective's red cells: measured on a shrunk mask, in these pixels
    cv2.circle(large, (250, 300), 120, 1, -1)
    cv2.circle(large, (450, 300), 120, 1, -1)
    assert np.median(local_thickness(large)[large > 0]) == pytest.approx(241, rel=0.05)


@pytest.mark.parametrize("magnification", [0.6, 2.0])
def test_a_set_of_fields_gives_the_pixel_scale_of_its_objective(magnification):
    """Fields drawn with every cell `magnification` x as large, in the same frame: another objective."""
    rulers = [measure_red_cells(synth_field(label, np.random.default_rng([6, i]), size=224, magnification=magnification)[0]) for i, label in enumerate(["Benign", "Early", "Pre", "Pro"] * 8)]
    estimate = estimate_pixel_scale(rulers, reference_px=RED_CELL_DIAMETER)
    assert estimate is not None and estimate.measured >= 30
    assert estimate.pixel_scale == pytest.approx(magnification, rel=0.05)  # 1.031 and 1.035 x measured


def test_training_fields_are_read_and_measured_from_their_files(tmp_path):
    paths = []
    for i, label in enumerate(["Benign", "Early", "Pre", "Pro"] * 3):
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), cv2.cvtColor(synth_field(label, np.random.default_rng([8, i]), size=224, magnification=1.5)[0], cv2.COLOR_RGB2BGR))
        paths.append(str(path))
    scale = training_scale(paths, most=6)
    assert scale is not None and scale.fields == 6 and scale.measured >= 5 and scale.field_scale == 1.0
    assert scale.red_cell_px == pytest.approx(1.5 * RED_CELL_DIAMETER, rel=0.08)


def test_a_set_s_scale_counts_each_image_by_its_red_cells_area():
    """At an oil objective most views show a part of one red cell; one shows only a speck (a scale bar)."""
    rulers = [Ruler(80.0, 0.4), Ruler(76.0, 0.5), Ruler(84.0, 0.3), Ruler(6.0, 3.0), Ruler(6.0, 3.0)]
    assert estimate_pixel_scale(rulers, reference_px=20.0).pixel_scale == pytest.approx(4.0, rel=0.05)
    assert estimate_pixel_scale([None, None, rulers[0]]) is None  # too few measured to say


def test_a_pixel_scale_within_the_sessions_spread_cuts_the_cells_as_a_field_of_view_does():
    rgb, _ = synth_field("Pre", np.random.default_rng(12), size=224)
    config = CropConfig(size=64)
    plain = field_crops(rgb, config)
    near = field_crops(rgb, config, pixel_scale=SCALE_TOLERANCE * 0.97)
    assert plain.pixel_scale is None and near.pixel_scale is None  # not resampled
    assert all(np.array_equal(a, b) for a, b in zip(plain.crops, near.crops)) and len(plain.crops) == len(near.crops) > 0
    double = cv2.resize(rgb, (448, 448), interpolation=cv2.INTER_CUBIC)  # the same view at twice the pixels: its own field of view
    assert field_crops(double, config, pixel_scale=2.0 * SCALE_TOLERANCE * 0.97).pixel_scale is None
    assert field_crops(rgb, config, pixel_scale=2.0).pixel_scale == 2.0  # another objective: resampled
