import dataclasses
import pickle

import cv2
import numpy as np
import pytest
import torch
from torchvision.transforms import v2

from leukoscope.config import AugmentConfig
from leukoscope.data.shifts import random_camera_colour
from leukoscope.preprocess.augment import (
    AugmentPipeline,
    ModelInput,
    RandomFlip,
    RandomRot90,
    RandomColourJitter,
    build_augment,
    expand_offline,
    hwc_to_chw,
    set_blur_strength,
    srgb_to_lab,
    to_model_input,
    turn_hue,
)
from leukoscope.preprocess.steps import IMAGENET_MEAN, IMAGENET_STD

NO_AUGMENT = AugmentConfig(hflip=False, vflip=False, rot90=False, affine_degrees=0, affine_translate=0, affine_scale=[1.0, 1.0], brightness=0, contrast=0, saturation=0, hue=0)


def _images(n=6, size=32):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_a_batch_is_made_model_input_exactly_as_each_of_its_items_would_be():
    """Training turns whole batches (items of two views included) into the model's input: bit for bit what
    normalising each item in a loader worker gave, so the same seed trains the same weights."""
    batch = torch.from_numpy(_images(12)).permute(0, 3, 1, 2).reshape(6, 2, 3, 32, 32)
    model_input = ModelInput(IMAGENET_MEAN, IMAGENET_STD)
    x = model_input(batch, training=True)
    assert x.dtype == torch.float32 and x.shape == batch.shape
    per_item = to_model_input(IMAGENET_MEAN, IMAGENET_STD)
    assert all(torch.equal(x[i, v], per_item(batch[i, v])) for i in range(6) for v in range(2))
    expected = (batch.float() / 255 - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]
    assert torch.allclose(x, expected, atol=1e-5)


def test_random_erasing_draws_a_rectangle_for_each_training_image_and_none_in_evaluation():
    batch = torch.from_numpy(_images(16)).permute(0, 3, 1, 2).reshape(8, 2, 3, 32, 32)
    model_input = ModelInput(IMAGENET_MEAN, IMAGENET_STD, erasing=1.0)
    plain = ModelInput(IMAGENET_MEAN, IMAGENET_STD)(batch)
    assert torch.equal(model_input(batch), plain)  # not training: nothing erased
    torch.manual_seed(0)
    erased = (model_input(batch, training=True) != plain).flatten(0, 1).any(dim=1)  # (16, H, W): where each image changed
    assert all(mask.any() for mask in erased)
    assert len({tuple(mask.nonzero().min(0).values.tolist()) for mask in erased}) > 1  # not one rectangle for the batch


def test_the_augmentation_changes_images_and_keeps_them_uint8():
    img = hwc_to_chw(_images(1)[0])
    t = build_augment(AugmentConfig())
    torch.manual_seed(0)
    outs = [t(img) for _ in range(8)]
    assert outs[0].shape == (3, 32, 32) and outs[0].dtype == torch.uint8
    assert any(not torch.equal(outs[0], o) for o in outs[1:])


def test_the_flips_and_quarter_turns_draw_and_move_pixels_as_torchvision_and_torch_do():
    """The HWC flips stand in for torchvision's: the same draws from torch's generator, the same pixels."""
    crops = [hwc_to_chw(x) for x in _images(40)]
    for ours, theirs in ((RandomFlip(axis=1), v2.RandomHorizontalFlip()), (RandomFlip(axis=0), v2.RandomVerticalFlip())):
        torch.manual_seed(3)
        a = [ours(c) for c in crops]
        torch.manual_seed(3)
        b = [theirs(c) for c in crops]
        assert all(torch.equal(x, y) for x, y in zip(a, b)) and any(not torch.equal(x, c) for x, c in zip(a, crops))
    torch.manual_seed(4)
    turned = [RandomRot90()(c) for c in crops]
    torch.manual_seed(4)
    ks = [int(torch.randint(0, 4, (1,)).item()) for _ in crops]
    assert set(ks) == {0, 1, 2, 3} and all(torch.equal(t, torch.rot90(c, k, dims=(-2, -1))) for t, c, k in zip(turned, crops, ks))


@pytest.mark.parametrize("outline_fill", [None, 128])
def test_the_pipeline_gives_what_its_transforms_give_one_after_another_and_leaves_its_input(outline_fill):
    """Chained on one HWC array, the augmentation is each transform applied to a CHW tensor in turn, draw for draw;
    and the item it reads (a loader's crop in shared memory) is never written to. (The colour jitter is left out:
    it draws from Albumentations' generator, which runs on between the two.)"""
    cfg = AugmentConfig(
        blur=0.5, jpeg=0.5, camera_colour=0.5, stain_hed=0.1, resample=0.5, grey=0.3, colour_inside_outline=True, affine_degrees=10, brightness=0, contrast=0, saturation=0
    )
    images = _images(60)
    images[:, :6] = 128  # a constant border, as around a suppressed cell
    pipeline = build_augment(cfg, fill=128, outline_fill=outline_fill)
    assert isinstance(pipeline, AugmentPipeline) and any(isinstance(t, v2.RandomAffine) for t in pipeline.transforms)
    one_by_one = v2.Compose(list(pipeline.transforms))
    before = images.copy()
    for i, image in enumerate(images):
        torch.manual_seed(i)
        chained = pipeline(hwc_to_chw(image))
        torch.manual_seed(i)
        assert torch.equal(chained, one_by_one(hwc_to_chw(image)))
    assert np.array_equal(images, before)


def test_an_affine_move_fills_the_border_with_what_surrounds_the_image():
    """Slide glass around a field; around a cell crop the constant its suppressed pixels already have."""
    crop = torch.full((3, 32, 32), 128, dtype=torch.uint8)
    cfg = AugmentConfig(hflip=False, vflip=False, rot90=False, affine_degrees=0, affine_translate=0, affine_scale=[0.6, 0.6], brightness=0, contrast=0, saturation=0, hue=0)
    assert (build_augment(cfg)(crop) == 255).any()
    assert (build_augment(cfg, fill=128)(crop) == 128).all()


def test_the_hue_turns_as_torchvision_turns_it_and_only_within_the_range_asked():
    import torchvision.transforms.v2.functional as F

    crops = [hwc_to_chw(x) for x in _images(8)]
    for shift in (-0.05, 0.013, 0.3):
        for crop in crops:
            assert (hwc_to_chw(turn_hue(crop.permute(1, 2, 0).numpy(), shift)).int() - F.adjust_hue(crop, shift).int()).abs().max() <= 1
    cfg = dataclasses.replace(NO_AUGMENT, hue=0.05)
    pure_red = torch.zeros((3, 8, 8), dtype=torch.uint8)
    pure_red[0] = 255
    torch.manual_seed(0)
    hues = [cv2.cvtColor(build_augment(cfg)(pure_red).permute(1, 2, 0).numpy()[:1, :1].astype(np.float32) / 255, cv2.COLOR_RGB2HSV)[0, 0, 0] for _ in range(200)]
    turned = [(h + 180) % 360 - 180 for h in hues]  # degrees from red
    assert max(abs(t) for t in turned) <= 0.05 * 360 + 1 and min(turned) < -9 and max(turned) > 9  # both ways, up to 18 degrees


def test_offline_expansion_balances_classes_from_given_items_only():
    images = _images(7)
    labels = [0, 0, 0, 0, 0, 1, 1]
    out, out_labels, sources = expand_offline(images, labels, per_class=6, cfg=AugmentConfig(), seed=0)
    assert out.shape == (12, 32, 32, 3) and out.dtype == np.uint8
    assert out_labels.count(0) == 6 and out_labels.count(1) == 6
    assert set(sources) <= set(range(7))
    assert all(labels[s] == lab for s, lab in zip(sources, out_labels))
    for i in range(7):  # every original kept, unchanged
        assert any(np.array_equal(images[i], o) for o in out)
    again, _, _ = expand_offline(images, labels, per_class=6, cfg=AugmentConfig(), seed=0)
    assert np.array_equal(out, again)


def test_invariance_augmentations_change_stain_colour_and_sharpness_but_not_the_cell():
    from leukoscope.data.synth import synth_field
    from leukoscope.preprocess.augment import RandomHEDJitter, build_augment

    rgb, _ = synth_field("Pre", np.random.default_rng(2), size=96)
    x = hwc_to_chw(rgb)
    torch.manual_seed(0)
    jittered = [RandomHEDJitter(0.25)(x).permute(1, 2, 0).numpy() for _ in range(6)]
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(float)
    for j in jittered:
        assert j.shape == rgb.shape and j.dtype == np.uint8
        assert np.corrcoef(grey.ravel(), cv2.cvtColor(j, cv2.COLOR_RGB2GRAY).astype(float).ravel())[0, 1] > 0.9  # the same cell
    means = np.array([j.reshape(-1, 3).mean(0) for j in jittered])
    assert means.std(axis=0).max() > 2  # but its colour varies from draw to draw
    assert torch.equal(RandomHEDJitter(0.0)(x), x)  # no jitter, no change
    always = AugmentConfig(**{**NO_AUGMENT.__dict__, "grey": 1.0, "blur": 1.0, "blur_sigma": [1.5, 1.5], "jpeg": 1.0, "jpeg_quality": [30, 30]})
    assert torch.equal(build_augment(NO_AUGMENT)(x), x)
    out = build_augment(always)(x).permute(1, 2, 0).numpy()
    assert (out[..., 0] == out[..., 1]).mean() > 0.99  # grey
    detail = lambda im: float(np.abs(cv2.Laplacian(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), cv2.CV_32F)).mean())  # noqa: E731
    assert detail(out) < 0.7 * detail(rgb)  # blurred


def test_a_wide_blur_is_not_truncated_by_its_kernel():
    """A blur of sigma 4 spreads a line as a Gaussian of sigma 4: a 7-px kernel held it to 1.9."""
    line = torch.zeros((3, 65, 65), dtype=torch.uint8)
    line[:, :, 32] = 255
    blurred = build_augment(AugmentConfig(**{**NO_AUGMENT.__dict__, "blur": 1.0, "blur_sigma": [4.0, 4.0]}))(line)[0].float()
    profile = blurred[32] / blurred[32].sum()
    spread = float(torch.sqrt((profile * (torch.arange(65) - 32.0) ** 2).sum()))
    assert 3.6 < spread < 4.4


def test_a_blur_warmup_reaches_data_loader_workers_that_are_already_running():
    """The warm-up sets the blur's share in the main process; persistent workers hold their own copy of the transform."""
    from torch.utils.data import DataLoader

    class Crops(torch.utils.data.Dataset):
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            self.crop = torch.from_numpy(rng.integers(0, 256, (3, 32, 32), dtype=np.uint8))
            self.transform = build_augment(AugmentConfig(**{**NO_AUGMENT.__dict__, "blur": 1.0, "blur_sigma": [2.0, 2.0]}))

        def __len__(self) -> int:
            return 8

        def __getitem__(self, i: int) -> torch.Tensor:
            return self.transform(self.crop)

    def blurred_share(loader: DataLoader, crops: Crops) -> float:
        return float(np.mean([not torch.equal(x, crops.crop) for batch in loader for x in batch]))

    crops = Crops()
    loader = DataLoader(crops, batch_size=4, num_workers=2, persistent_workers=True)
    assert blurred_share(loader, crops) == 1.0
    assert set_blur_strength(crops.transform, 0.0) == 1
    assert blurred_share(loader, crops) == 0.0
    set_blur_strength(crops.transform, 1.0)
    assert blurred_share(loader, crops) == 1.0


@pytest.mark.parametrize(
    ("optics", "on_the_chromatin"),
    [
        ({"blur": 1.0, "blur_sigma": [2.0, 2.0]}, lambda out, crop: out.std() < 0.5 * crop.std()),  # blurred
        ({"jpeg": 1.0, "jpeg_quality": [30, 30]}, lambda out, crop: np.abs(out.astype(int) - crop).mean() > 10),  # recompressed
    ],
    ids=["blur", "jpeg"],
)
def test_a_cell_crop_keeps_its_outline_through_the_optics_as_a_field_s_crop_does(optics, on_the_chromatin):
    """Crops are cut after a field's blur or recompression, so the constant around the cell stays exactly as it
    was, with no blur or JPEG ringing on it; blurring it too taught the model a tell."""
    rng = np.random.default_rng(0)
    crop = np.full((64, 64, 3), 128, np.uint8)
    yy, xx = np.mgrid[:64, :64]
    cell = (yy - 32) ** 2 + (xx - 32) ** 2 < 20**2
    crop[cell] = rng.integers(40, 200, (int(cell.sum()), 3), dtype=np.uint8)  # textured chromatin, never the fill
    x = torch.from_numpy(crop).permute(2, 0, 1).contiguous()
    always = AugmentConfig(**{**NO_AUGMENT.__dict__, **optics})
    as_cell = build_augment(always, fill=128, outline_fill=128)(x).permute(1, 2, 0).numpy()
    as_field = build_augment(always)(x).permute(1, 2, 0).numpy()
    assert (as_cell[~cell] == 128).all()  # the outline is where it was, as sharp as it was
    assert on_the_chromatin(as_cell[cell], crop[cell])
    assert (as_field[~cell] != 128).any()  # a field has no outline to keep: the whole crop changes
    never = AugmentConfig(**{**always.__dict__, next(iter(optics)): 0.0})  # the same optics, never applied
    assert torch.equal(build_augment(never, fill=128, outline_fill=128)(x), x)


def test_a_field_like_blur_gives_a_cell_crop_what_a_blurred_field_gives_its_cell():
    """A field's blur mixes plasma into the cell's rim, and the stain transfer restores the cell's LAB means and
    spreads; blurred against the constant, the crop came out darker at the rim and with half its contrast."""
    from leukoscope.preprocess.augment import PLASMA_RGB, normalised_back

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64]
    cell = (yy - 32) ** 2 + (xx - 32) ** 2 < 20**2
    chromatin = cv2.resize(rng.integers(60, 200, (8, 8, 3), dtype=np.uint8), (64, 64), interpolation=cv2.INTER_CUBIC)  # clumps of ~8 px
    field = np.where(cell[..., None], chromatin, np.round((PLASMA_RGB[0] + PLASMA_RGB[1]) / 2).astype(np.uint8))
    blurred_field = normalised_back(field, cv2.GaussianBlur(field, (0, 0), 2.0), cell)
    crop = np.where(cell[..., None], field, np.uint8(128))
    cut_from_blurred_field = np.where(cell[..., None], blurred_field, np.uint8(128))
    x = torch.from_numpy(crop).permute(2, 0, 1).contiguous()
    error = {}
    for as_field in (False, True):
        augment = build_augment(AugmentConfig(**{**NO_AUGMENT.__dict__, "blur": 1.0, "blur_sigma": [2.0, 2.0], "blur_as_field": as_field}), fill=128, outline_fill=128)
        out = augment(x).permute(1, 2, 0).numpy()
        assert (out[~cell] == 128).all()  # the outline as sharp as a field's crop has it
        error[as_field] = np.abs(out.astype(float) - cut_from_blurred_field)[cell].mean()
    assert error[True] < 1.5 and error[False] > 3 * error[True], error
    assert torch.equal(build_augment(AugmentConfig(**{**NO_AUGMENT.__dict__, "blur_as_field": True}), fill=128, outline_fill=128)(x), x)  # no blur asked


def test_the_colour_jitter_can_move_a_cell_against_the_constant_around_it():
    """A brightness jitter of the whole crop moves the constant with the cell, so the cell's lightness against
    it never changes; `colour_inside_outline` keeps the constant and moves the cell alone."""
    rng = np.random.default_rng(0)
    crop = np.full((64, 64, 3), 128, np.uint8)
    yy, xx = np.mgrid[:64, :64]
    cell = (yy - 32) ** 2 + (xx - 32) ** 2 < 20**2
    crop[cell] = rng.integers(40, 200, (int(cell.sum()), 3), dtype=np.uint8)
    x = torch.from_numpy(crop).permute(2, 0, 1).contiguous()
    ratio = {}
    for inside in (False, True):
        augment = build_augment(AugmentConfig(**{**NO_AUGMENT.__dict__, "brightness": 0.4, "colour_inside_outline": inside}), fill=128, outline_fill=128)
        torch.manual_seed(0)
        outs = [augment(x).permute(1, 2, 0).numpy().astype(float) for _ in range(20)]
        assert inside is False or all((o[~cell] == 128).all() for o in outs)
        ratio[inside] = np.array([o[cell].mean() / o[~cell].mean() for o in outs]) / (crop[cell].mean() / 128)
    assert np.abs(ratio[False] - 1).max() < 0.03  # the cell as light against its surroundings as ever
    assert ratio[True].max() - ratio[True].min() > 0.3, ratio[True]  # lightened and darkened against them


def test_a_resampled_crop_has_the_detail_of_a_cell_seen_at_a_coarser_pixel_size_and_keeps_its_outline():
    """What cutting a cell from an image at half the training resolution gives: its finest detail gone, its shape kept."""
    yy, xx = np.mgrid[:64, :64]
    cell = (yy - 32) ** 2 + (xx - 32) ** 2 < 20**2
    fine = np.where(((yy + xx) % 2 == 0)[..., None], 60, 180).astype(np.uint8).repeat(3, axis=2)  # 1-px chromatin
    coarse = np.where((((yy // 16) + (xx // 16)) % 2 == 0)[..., None], 60, 180).astype(np.uint8).repeat(3, axis=2)  # 16-px clumps
    half = dataclasses.replace(NO_AUGMENT, resample=1.0, resample_scale=[0.5, 0.5])
    for texture in (fine, coarse):
        crop = np.full((64, 64, 3), 128, np.uint8)
        crop[cell] = texture[cell]
        out = build_augment(half, fill=128, outline_fill=128)(torch.from_numpy(crop).permute(2, 0, 1).contiguous()).permute(1, 2, 0).numpy()
        reference = cv2.resize(cv2.resize(crop, (32, 32), interpolation=cv2.INTER_AREA), (64, 64), interpolation=cv2.INTER_CUBIC)
        assert (out[~cell] == 128).all() and np.array_equal(out[cell], reference[cell])
        inner = (yy - 32) ** 2 + (xx - 32) ** 2 < 16**2
        kept = np.abs(out[inner].astype(int) - crop[inner]).mean()
        if texture is fine:
            assert out[inner].std() < 0.1 * crop[inner].std()  # averaged away
        else:
            assert kept < 12  # the clumps stay where they are (only their edges soften)
    never = dataclasses.replace(NO_AUGMENT, resample=0.0)
    x = torch.from_numpy(crop).permute(2, 0, 1).contiguous()
    assert torch.equal(build_augment(never)(x), x)


def _lab_stats(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lab = cv2.cvtColor(pixels[None].astype(np.float32) / 255, cv2.COLOR_RGB2LAB)[0]
    return lab.mean(0), lab.std(0)


def test_another_camera_s_colours_leave_only_what_the_stain_normalisation_leaves_of_them():
    """The cell's pixels change, but their LAB means and spreads are brought back to the cell's own, as
    the stain normalisation before the model brings them back; the constant around the cell stays exact."""
    rng = np.random.default_rng(0)
    crop = np.full((64, 64, 3), 128, np.uint8)
    yy, xx = np.mgrid[:64, :64]
    cell = (yy - 32) ** 2 + (xx - 32) ** 2 < 22**2
    nucleus = (yy - 32) ** 2 + (xx - 30) ** 2 < 13**2
    crop[cell] = np.clip(rng.normal((175, 160, 205), 8, (int(cell.sum()), 3)), 0, 255)  # pale blue cytoplasm
    crop[nucleus] = np.clip(rng.normal((105, 55, 145), 10, (int(nucleus.sum()), 3)), 0, 255)  # purple chromatin
    x = torch.from_numpy(crop).permute(2, 0, 1).contiguous()
    transform = build_augment(dataclasses.replace(NO_AUGMENT, camera_colour=1.0, camera_hue=30.0), fill=128, outline_fill=128)
    own_mean, own_std = _lab_stats(crop[cell])
    torch.manual_seed(0)
    for draw in range(8):
        out = transform(x).permute(1, 2, 0).numpy()
        assert (out[~cell] == 128).all()
        assert np.abs(out[cell].astype(int) - crop[cell]).mean() > 1  # the colours moved...
        mean, std = _lab_stats(out[cell])
        assert np.abs(mean - own_mean).max() < 1.0 and np.abs(std / own_std - 1).max() < 0.1  # ...within the same statistics
        shifted_mean, _ = _lab_stats(random_camera_colour(crop, np.random.default_rng(draw))[cell])
        assert np.abs(shifted_mean - own_mean).max() > 2.0  # which the camera's colours alone do not keep
    never = build_augment(dataclasses.replace(NO_AUGMENT, camera_colour=0.0), fill=128, outline_fill=128)
    assert torch.equal(never(x), x)


def test_the_stain_jitter_moves_the_cell_and_keeps_the_constant_around_it_when_told():
    crop = np.full((64, 64, 3), 128, np.uint8)
    crop[16:48, 16:48] = (150, 90, 170)
    x = hwc_to_chw(crop)
    torch.manual_seed(0)
    inside = dataclasses.replace(NO_AUGMENT, stain_hed=0.3, colour_inside_outline=True)
    kept = [build_augment(inside, outline_fill=128)(x) for _ in range(4)]
    assert all((k[:, :16] == 128).all() for k in kept)
    assert any(not torch.equal(k[:, 16:48, 16:48], x[:, 16:48, 16:48]) for k in kept)
    whole = dataclasses.replace(NO_AUGMENT, stain_hed=0.3)
    assert any(not (build_augment(whole, outline_fill=128)(x)[:, :16] == 128).all() for _ in range(4))


def test_an_8_bit_image_s_lab_is_opencv_s_and_comes_back_to_the_same_pixels():
    """The camera-colour augmentation's fast LAB: OpenCV's float conversion within half a unit, and a round trip
    through OpenCV's LAB2RGB that returns every 8-bit colour (every third level of each channel) as it was."""
    levels = np.arange(0, 256, 3, dtype=np.uint8)
    rgb = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 1, 3)
    lab = srgb_to_lab(rgb)
    assert np.abs(lab - cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)).max() < 0.5
    back = np.clip(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB) * 255 + 0.5, 0, 255).astype(np.uint8)
    assert np.array_equal(back, rgb)


def test_the_colour_jitter_draws_within_its_ranges_and_a_seeded_run_draws_the_same_in_every_worker():
    grey = torch.full((3, 16, 16), 128, dtype=torch.uint8)
    brightness = RandomColourJitter(0.2, 0.0, 0.0)
    torch.manual_seed(0)
    ratios = np.array([brightness(grey).float().mean().item() / 128 for _ in range(300)])
    assert ratios.min() >= 0.8 - 1 / 128 and ratios.max() <= 1.2 + 1 / 128
    assert ratios.min() < 0.85 and ratios.max() > 1.15  # both ways, nearly to the ends

    crops = [hwc_to_chw(x) for x in _images(4)]
    jitter = RandomColourJitter(0.2, 0.2, 0.25)

    def draws(transform: RandomColourJitter, seed: int) -> list[torch.Tensor]:
        torch.manual_seed(seed)
        return [transform(c) for c in crops]

    first = draws(RandomColourJitter(0.2, 0.2, 0.25), 0)
    assert all(torch.equal(a, b) for a, b in zip(first, draws(RandomColourJitter(0.2, 0.2, 0.25), 0)))
    assert any(not torch.equal(a, c) for a, c in zip(first, crops))
    jitter(crops[0])  # its own generator made; a data-loader worker receives the transform pickled
    worker_a, worker_b = pickle.loads(pickle.dumps(jitter)), pickle.loads(pickle.dumps(jitter))
    assert all(torch.equal(a, b) for a, b in zip(draws(worker_a, 0), first))  # seeded again from torch where it runs
    assert any(not torch.equal(a, b) for a, b in zip(draws(worker_b, 1), first))  # another worker's seed, other draws


def _disc_crop(size=64, radius=18, fill=128):
    """A suppressed cell crop: a textured disc on the constant `fill`."""
    rng = np.random.default_rng(1)
    crop = np.full((size, size, 3), fill, np.uint8)
    yy, xx = np.mgrid[:size, :size]
    disc = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < radius**2
    crop[disc] = rng.integers(40, 110, (int(disc.sum()), 3), dtype=np.uint8)
    return crop, disc


def _box(mask):
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def test_a_frame_cut_keeps_part_of_the_cell_as_it_was_beyond_a_straight_line_along_a_side():
    """augment.frame_cut: the cell beyond a line parallel to one side becomes the constant around it; what stays is
    the cell's own pixels, a share of its extent drawn from frame_cut_keep; every side is cut; the input is kept."""
    crop, disc = _disc_crop()
    before = crop.copy()
    augment = build_augment(dataclasses.replace(NO_AUGMENT, frame_cut=1.0, frame_cut_keep=[0.4, 0.9]), fill=128, outline_fill=128)
    sides, shares = set(), []
    for seed in range(60):
        torch.manual_seed(seed)
        out = augment(hwc_to_chw(crop)).permute(1, 2, 0).numpy()
        left = (out != 128).any(-1)
        assert left.any() and (left & ~disc).sum() == 0  # nothing but the cell's own pixels stays...
        assert np.array_equal(out[left], crop[left])  # ... as they were
        box, kept_box = _box(disc), _box(left)  # top, bottom, left, right
        moved = [abs(a - b) for a, b in zip(box, kept_box)]
        side = int(np.argmax(moved))
        sides.add(("top", "bottom", "left", "right")[side])
        top, bottom, left_edge, right_edge = kept_box
        beyond = np.zeros_like(disc)  # what lies past the kept part on the cut side
        beyond[[np.s_[:top], np.s_[bottom:], np.s_[:, :left_edge], np.s_[:, right_edge:]][side]] = True
        assert np.array_equal(left, disc & ~beyond)  # the cell is cut along one straight line
        extent = box[1] - box[0] if side < 2 else box[3] - box[2]
        shares.append((kept_box[1] - kept_box[0] if side < 2 else kept_box[3] - kept_box[2]) / extent)
    assert sides == {"top", "bottom", "left", "right"}
    assert 0.38 <= min(shares) and max(shares) <= 0.92 and max(shares) - min(shares) > 0.3
    assert np.array_equal(crop, before)


def test_a_frame_cut_is_drawn_with_its_probability_and_needs_a_suppressed_cell_crop():
    crop, _ = _disc_crop()
    never = build_augment(dataclasses.replace(NO_AUGMENT, frame_cut=0.0), fill=128, outline_fill=128)
    assert torch.equal(never(hwc_to_chw(crop)), hwc_to_chw(crop))
    half = build_augment(dataclasses.replace(NO_AUGMENT, frame_cut=0.5), fill=128, outline_fill=128)
    torch.manual_seed(0)
    cut = sum(not torch.equal(half(hwc_to_chw(crop)), hwc_to_chw(crop)) for _ in range(400))
    assert 150 < cut < 250
    with pytest.raises(ValueError, match="frame_cut.*suppressed cell crops"):
        build_augment(dataclasses.replace(NO_AUGMENT, frame_cut=0.5), fill=255)
