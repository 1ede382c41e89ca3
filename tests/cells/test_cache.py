from dataclasses import asdict

from leukoscope.cells.cache import DETECTION_ADDED_LATER, CellCropCache, crop_config, detection_config, settings_key
from leukoscope.cells.crops import CROP_FORMAT
from leukoscope.config import CellsConfig, PreprocessConfig, stable_hash
from leukoscope.preprocess import Pipeline


def test_the_crop_cache_keys_on_cutting_in_the_colour_range_and_keeps_the_folder_of_crops_cut_before_it(tmp_path):
    """Crops cut in the colour range differ from those cut as imaged, so they may not share a cache; crops cached
    before the setting existed were cut as imaged and stay valid under its default."""
    pipeline = Pipeline(PreprocessConfig(size=48))
    as_imaged = CellCropCache(tmp_path, pipeline, CellsConfig())
    in_range = CellCropCache(tmp_path, pipeline, CellsConfig(crop_in_colour_range=True))
    assert in_range.folder != as_imaged.folder
    settings = asdict(crop_config(CellsConfig()))
    del settings["colour_range"]  # the settings as they were before the key
    before = stable_hash({"format": CROP_FORMAT, "pipeline": pipeline.cache_key, "crop": settings, "detect": settings_key(detection_config(CellsConfig()), DETECTION_ADDED_LATER)})
    assert as_imaged.folder.name == before
