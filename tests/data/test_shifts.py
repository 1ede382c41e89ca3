"""Every acquisition shift of the domain-shift benchmark does what its name says, on a synthetic field."""

import cv2
import numpy as np
import pytest
from skimage.color import rgb_from_hed

from leukoscope.data.shifts import (
    DOMAIN_SHIFTS,
    OTHER_LAB_SHIFTS,
    OTHER_LABS,
    AcquisitionRanges,
    blur,
    dye_amounts,
    field_stop,
    from_dye_amounts,
    gamma,
    grey,
    jpeg,
    magnified_box,
    magnify,
    other_lab_view,
    random_acquisition,
    resolution,
    rotate_hue,
    scale_saturation,
    sharpen,
    stain_balance,
    vignette,
    white_balance,
)
from leukoscope.data.synth import synth_field


@pytest.fixture(scope="module")
def field():
    return synth_field("Pre", np.random.default_rng(4), size=224, n_cells=3)[0]


def _hsv(rgb):
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV_FULL).astype(np.float32)


@pytest.mark.parametrize("degrees", [-30, -15, 15, 30])
def test_hue_rotates_by_the_stated_angle(field, degrees):
    before, after = _hsv(field), _hsv(rotate_hue(field, degrees))
    coloured = before[..., 1] > 60  # hue is only defined where there is colour
    delta = (after[..., 0] - before[..., 0])[coloured] * 360 / 256
    delta = (delta + 180) % 360 - 180
    assert np.median(delta) == pytest.approx(degrees, abs=3)


@pytest.mark.parametrize("factor", [0.6, 1.4])
def test_saturation_scales_by_the_stated_factor(field, factor):
    before = cv2.cvtColor(field, cv2.COLOR_RGB2HSV)[..., 1].astype(float)
    after = cv2.cvtColor(scale_saturation(field, factor), cv2.COLOR_RGB2HSV)[..., 1].astype(float)
    unclipped = (before > 20) & (before * factor < 250)
    assert np.median(after[unclipped] / before[unclipped]) == pytest.approx(factor, rel=0.05)


def test_white_balance_applies_a_gain_per_channel(field):
    after = white_balance(field, (1.15, 1.0, 0.85)).astype(float)
    ratio = after.reshape(-1, 3).mean(0) / field.reshape(-1, 3).astype(float).mean(0)
    assert ratio[1] == pytest.approx(1.0, abs=0.005) and ratio[2] == pytest.approx(0.85, abs=0.01)
    assert 1.05 < ratio[0] <= 1.15  # bright red channels clip at 255


@pytest.mark.parametrize("value", [0.7, 1.4])
def test_gamma_maps_every_level_by_the_power_law(value):
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    expected = 255 * (np.arange(256) / 255) ** value
    assert np.abs(gamma(levels, value)[..., 0].ravel() - expected).max() <= 0.5


def test_blur_and_jpeg_remove_detail_more_at_the_stronger_setting(field):
    def detail(x):
        return float(np.abs(cv2.Laplacian(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), cv2.CV_32F)).mean())

    assert detail(field) > detail(blur(field, 1.0)) > detail(blur(field, 2.0))
    error_60 = np.abs(jpeg(field, 60).astype(int) - field).mean()
    error_30 = np.abs(jpeg(field, 30).astype(int) - field).mean()
    assert 0 < error_60 < error_30 and jpeg(field, 30).shape == field.shape


@pytest.mark.parametrize("factor", [0.5, 2.0, 3.0])
def test_magnification_scales_what_is_seen_about_the_centre_and_keeps_the_frame(factor):
    disc = np.full((224, 224, 3), (236, 231, 230), np.uint8)
    cv2.circle(disc, (112, 112), 20, (120, 75, 165), -1)
    shifted = magnify(disc, factor)
    assert shifted.shape == disc.shape
    dark = shifted[..., 1] < 150
    assert np.sqrt(dark.sum() / np.pi) == pytest.approx(20 * factor, rel=0.05)
    ys, xs = np.nonzero(dark)
    assert (xs.mean(), ys.mean()) == pytest.approx((111.5, 111.5), abs=1.5)
    if factor < 1:  # shrunk: the margin is the field's plasma colour, where no cell can appear
        assert (shifted[:50] == (236, 231, 230)).all()


@pytest.mark.parametrize("factor", [0.5, 2.0, 3.0])
def test_a_magnified_box_lands_on_the_magnified_disc_or_is_dropped_outside_the_frame(factor):
    disc = np.full((200, 240, 3), (236, 231, 230), np.uint8)
    cv2.rectangle(disc, (100, 80), (129, 109), (120, 75, 165), -1)  # box (100, 80, 130, 110), exclusive
    ys, xs = np.nonzero(magnify(disc, factor)[..., 1] < 150)
    moved = magnified_box((100, 80, 130, 110), disc.shape, factor)
    assert moved == pytest.approx((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), abs=1.5)
    corner = magnified_box((0, 0, 20, 20), disc.shape, factor)
    assert (corner is None) == (factor > 1)  # a corner leaves an enlarged field's frame and stays in a shrunk one


def test_sharpening_raises_the_fine_detail_more_at_the_stronger_setting_and_keeps_the_colours(field):
    assert np.array_equal(sharpen(field, 0.0), field)
    assert _detail(sharpen(field, 2.0)) > _detail(sharpen(field, 1.0)) > 1.3 * _detail(field)
    for amount in (1.0, 2.0):  # unsharp masking moves no mean colour, up to clipping at the darkest nuclei
        mean_shift = sharpen(field, amount).reshape(-1, 3).mean(0) - field.reshape(-1, 3).mean(0)
        assert np.abs(mean_shift).max() < 1.0


@pytest.mark.parametrize("corner", [0.8, 0.6])
def test_vignetting_darkens_towards_the_corners_to_the_stated_share_and_leaves_the_centre(corner):
    plasma = np.full((224, 224, 3), (236, 231, 230), np.uint8)
    dimmed = vignette(plasma, corner).astype(float)
    assert np.abs(dimmed[111:113, 111:113] - plasma[111:113, 111:113]).max() <= 1
    assert dimmed[0, 0] / plasma[0, 0] == pytest.approx([corner] * 3, abs=0.01)
    assert dimmed[0, 112, 1] / 231 == pytest.approx(1 - (1 - corner) / 2, abs=0.01)  # half the squared distance at an edge's middle


def test_a_field_stop_blackens_the_corners_beyond_its_radius_and_leaves_the_centre():
    plasma = np.full((224, 224, 3), (236, 231, 230), np.uint8)
    stopped = field_stop(plasma, radius=0.6)
    assert (stopped[:3, :3] == 0).all() and (stopped[-3:, -3:] == 0).all()
    assert np.array_equal(stopped[60:164, 60:164], plasma[60:164, 60:164])
    yy, xx = np.mgrid[:224, :224]
    beyond = (xx - 111.5) ** 2 + (yy - 111.5) ** 2 > (0.6 * 224) ** 2
    black = stopped.max(axis=-1) < 60
    assert abs(black.mean() - beyond.mean()) < 0.01  # the stop's area, edge softened over a pixel


@pytest.mark.parametrize("factor", [1.5, 1 / 1.5])
def test_the_nuclear_stain_shift_scales_that_dye_alone_and_keeps_white_white(field, factor):
    amounts = np.stack(np.meshgrid(np.linspace(0, 0.35, 12), np.linspace(0, 0.35, 12)), -1).reshape(-1, 2)
    density = amounts @ rgb_from_hed[:2]  # pixels of known hematoxylin and eosin amounts
    stained = (256 * np.exp(-density) - 1).round().astype(np.uint8).reshape(12, 12, 3)
    before, after = dye_amounts(stained), dye_amounts(stain_balance(stained, hematoxylin=factor))
    assert after[:, 0] == pytest.approx(factor * before[:, 0], abs=0.02)
    assert after[:, 1] == pytest.approx(before[:, 1], abs=0.02)
    assert np.array_equal(stain_balance(field), field)
    white = np.full((4, 4, 3), 255, np.uint8)
    assert np.array_equal(stain_balance(white, hematoxylin=factor), white)
    every_level = np.stack(np.meshgrid(np.arange(256), np.arange(0, 256, 15), np.arange(0, 256, 15)), -1).astype(np.uint8)
    assert np.array_equal(from_dye_amounts(dye_amounts(every_level), every_level.shape), every_level)  # scikit-image's rgb2hed: up to 139 off


def test_grey_drops_colour_and_every_shift_keeps_the_frame(field):
    g = grey(field)
    assert (g[..., 0] == g[..., 1]).all() and (g[..., 1] == g[..., 2]).all()
    for name, shift in DOMAIN_SHIFTS.items():
        out = shift(field)
        assert out.shape == field.shape and out.dtype == np.uint8, name
        assert not np.array_equal(out, field), name


def _detail(x):
    return float(np.abs(cv2.Laplacian(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), cv2.CV_32F)).mean())


def test_fewer_pixels_lose_detail_and_keep_the_frame(field):
    half, quarter = resolution(field, 0.5), resolution(field, 0.25)
    assert half.shape == quarter.shape == field.shape
    assert _detail(field) > _detail(half) > _detail(quarter)
    assert np.abs(half.astype(int) - field).mean() < 10  # the same scene, not another one


def test_a_random_acquisition_is_seeded_and_stays_within_its_ranges(field):
    def draw(seed, ranges=AcquisitionRanges()):
        return random_acquisition(field, np.random.default_rng(seed), ranges)

    assert np.array_equal(draw(1), draw(1)) and not np.array_equal(draw(1), draw(2))
    drawn = [draw(s) for s in range(12)]
    assert all(d.shape == field.shape and d.dtype == np.uint8 for d in drawn)
    # the field's median colour moves, but within the white balance and gamma ranges
    ratios = np.array([np.median(d.reshape(-1, 3), axis=0) / np.maximum(np.median(field.reshape(-1, 3), axis=0), 1) for d in drawn])
    assert ratios[:, [0, 2]].std(0).min() > 0.01 and np.abs(ratios - 1).max() < 0.5
    # nothing drawn: the field comes back as the lossless parts of the chain leave it
    still = AcquisitionRanges(blur=(0, 0), resolution=(1, 1), white_balance=0, gamma=(1, 1), hue=0, saturation=(1, 1), jpeg=(100, 100))
    assert np.abs(draw(3, still).astype(int) - field).mean() < 3  # HSV round trips and JPEG at 100; a 15 % gain alone moves it ~25


def test_another_lab_records_the_same_view_at_its_pixel_scale_with_every_change_at_once(field):
    assert len(OTHER_LAB_SHIFTS) == len(OTHER_LABS)
    for lab in OTHER_LABS:
        out = other_lab_view(field, lab)
        side = round(224 * lab.zoom)
        assert out.shape == (side, side, 3) and out.dtype == np.uint8, lab.name
        zoomed = cv2.resize(field, (side, side), interpolation=cv2.INTER_CUBIC if lab.zoom > 1 else cv2.INTER_AREA)
        zoomed = magnify(zoomed, lab.objective) if lab.objective != 1 else zoomed
        by_hand = white_balance(scale_saturation(rotate_hue(zoomed, lab.hue), lab.saturation), lab.white_balance)
        by_hand = blur(by_hand, lab.blur) if lab.blur else by_hand
        by_hand = jpeg(by_hand, lab.jpeg) if lab.jpeg else by_hand
        assert np.array_equal(out, by_hand), lab.name
        # the same view (its centre, through a stronger objective): brought back to the field's size, the scene is the field's, in
        # other colours; compared in green, the camera's reference channel (a warm lamp changes which channel is brightest)
        back = cv2.resize(out, (224, 224), interpolation=cv2.INTER_AREA)
        seen = magnify(field, lab.objective) if lab.objective != 1 else field
        assert np.corrcoef(back[..., 1].ravel(), seen[..., 1].ravel())[0, 1] > 0.9, lab.name
        assert np.corrcoef(back[..., 1].ravel(), field[..., 1].ravel())[0, 1] < 0.9 or lab.objective == 1, lab.name  # not the whole view
        assert np.abs(np.median(back.reshape(-1, 3), axis=0) - np.median(field.reshape(-1, 3), axis=0)).max() > 3, lab.name
