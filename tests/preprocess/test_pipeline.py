import numpy as np
import pytest

from leukoscope.config import PreprocessConfig
from leukoscope.errors import ImageError
from leukoscope.preprocess import Pipeline
from leukoscope.preprocess.cache import PreprocessCache, preprocess_many
from leukoscope.preprocess.pipeline import channel_stats


def test_default_chain_is_the_papers_order():
    names = [n for n, _ in Pipeline().named_steps()]
    assert [n.split()[0] for n in names] == ["resize", "LAB", "denoise"]


def test_output_contract_and_determinism(synth_dir):
    path = next((synth_dir / "Pro").glob("*.jpg"))
    p = Pipeline(PreprocessConfig(size=64))
    a, b = p.load(path), p.load(path)
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)


def test_cache_hit_is_identical_and_changed_parameter_misses(tmp_path, synth_dir):
    paths = sorted(str(p) for p in (synth_dir / "Early").glob("*.jpg"))[:3]
    cache = PreprocessCache(tmp_path, Pipeline(PreprocessConfig(size=48)))
    first, _ = preprocess_many(paths, None, cache)
    files = sorted(cache.folder.rglob("*.npy"))
    assert len(files) == 3
    mtimes = [f.stat().st_mtime_ns for f in files]
    second, _ = preprocess_many(paths, None, cache)
    assert np.array_equal(first, second)
    assert [f.stat().st_mtime_ns for f in files] == mtimes  # served, not recomputed
    other = PreprocessCache(tmp_path, Pipeline(PreprocessConfig(size=48, clahe_clip=3.0)))
    assert other.folder != cache.folder
    assert other.get(files[0].stem) is None
    same_norm = PreprocessCache(tmp_path, Pipeline(PreprocessConfig(size=48, normalize="none")))
    assert same_norm.folder == cache.folder  # normalisation happens later, on tensors


def test_bad_files_are_reported_not_fatal(tmp_path, synth_dir):
    good = str(next((synth_dir / "Pre").glob("*.jpg")))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    stack, failures = preprocess_many([good, str(bad)], None, PreprocessCache(tmp_path, Pipeline(PreprocessConfig(size=32))))
    assert stack.shape == (1, 32, 32, 3)
    assert failures[0]["path"] == str(bad) and "bad.jpg" in failures[0]["reason"]
    with pytest.raises(ImageError, match="bad.jpg"):
        Pipeline().load(bad)


def test_pixel_limit_is_configurable(tmp_path):
    from PIL import Image

    Image.new("RGB", (300, 300)).save(tmp_path / "big.png")
    with pytest.raises(ImageError, match="too large"):
        Pipeline(PreprocessConfig(max_pixels=10_000)).load(tmp_path / "big.png")


def test_channel_stats():
    imgs = np.zeros((2, 4, 4, 3), np.uint8)
    imgs[1] = 255
    mean, std = channel_stats(imgs)
    assert mean == [0.5, 0.5, 0.5] and np.allclose(std, 0.5)


def test_preview_grid(tmp_path, synth_dir):
    from leukoscope.preprocess.preview import save_preview

    paths = sorted((synth_dir / "Pro").glob("*.jpg"))[:2]
    out = save_preview(paths, Pipeline(PreprocessConfig(mask_annotation=True)), tmp_path / "p.png")
    import cv2

    img = cv2.imread(str(out))
    assert img.shape[1] > img.shape[0] * 1.5  # a row per image, a column per step
