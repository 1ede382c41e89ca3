import numpy as np
import pytest
from PIL import Image

from leukoscope.data.images import read_rgb
from leukoscope.errors import ImageError


def _rgb_image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16", "RGB", "1", "I", "F"])
def test_every_mode_becomes_rgb_uint8(tmp_path, mode):
    base = Image.fromarray(_rgb_image())
    if mode == "I;16":
        img = Image.fromarray((np.asarray(base.convert("L"), dtype=np.uint16) * 257))
        assert img.mode == "I;16"
    else:
        img = base.convert(mode)
    suffix = ".tif" if mode in ("CMYK", "I", "F") else ".png"
    path = tmp_path / f"img{suffix}"
    img.save(path)
    out = read_rgb(path)
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8


def test_grey_16_bit_keeps_intensity(tmp_path):
    grey = np.linspace(0, 255, 30, dtype=np.uint8)[None, :].repeat(20, 0)
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "g.png")
    out = read_rgb(tmp_path / "g.png")
    assert np.abs(out[..., 0].astype(int) - grey).max() <= 1
    assert (out[..., 0] == out[..., 2]).all()


def test_transparent_pixels_become_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    assert (read_rgb(tmp_path / "t.png") == 255).all()


def test_pixel_limit_refuses_huge_image_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("L", (5000, 5000)).save(path)
    with pytest.raises(ImageError, match="too large") as info:
        read_rgb(path, max_pixels=10_000_000)
    assert str(path) in str(info.value)


def test_decompression_bomb_header_is_refused(tmp_path):
    # a 20,000 x 20,000 PNG whose compressed data is tiny
    path = tmp_path / "bomb.png"
    Image.new("1", (20_000, 20_000)).save(path)
    with pytest.raises(ImageError, match="too large|not a readable"):
        read_rgb(path)


@pytest.mark.parametrize(
    "name,content,reason",
    [
        ("empty.jpg", b"", "empty file"),
        ("text.jpg", b"this is not an image\n", "not a readable image .no image format recognised"),
    ],
)
def test_bad_files_name_themselves(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageError, match=reason) as info:
        read_rgb(path)
    assert info.value.path == str(path)


def test_truncated_jpeg_is_reported(tmp_path):
    path = tmp_path / "full.jpg"
    Image.fromarray(_rgb_image()).resize((300, 300)).save(path, quality=95)
    data = path.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageError, match="truncated|corrupt|not a readable"):
        read_rgb(cut)
