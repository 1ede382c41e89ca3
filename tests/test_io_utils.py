import os
import stat

import pytest

from leukoscope.io_utils import atomic_write


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_new_file_gets_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "sub" / "preds.csv") as fh:
            fh.write("path,label\n")
    finally:
        os.umask(old)
    assert (tmp_path / "sub" / "preds.csv").read_text() == "path,label\n"
    assert _mode(tmp_path / "sub" / "preds.csv") == 0o644
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["preds.csv"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as fh:
            fh.write("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_binary_mode(tmp_path):
    with atomic_write(tmp_path / "x.png", "wb") as fh:
        fh.write(b"\x89PNG")
    assert (tmp_path / "x.png").read_bytes() == b"\x89PNG"


def test_a_folder_in_the_way_is_a_one_line_error(tmp_path):
    from leukoscope.errors import OutputError

    (tmp_path / "report.json").mkdir()
    with pytest.raises(OutputError, match="report.json: is a folder; name the file to write"):
        with atomic_write(tmp_path / "report.json") as fh:
            fh.write("{}")
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_report_left_out_lists_a_few_then_points_to_the_rest(capsys):
    from leukoscope.io_utils import report_left_out

    bad = [{"path": f"Pro/{i}.jpg", "reason": "empty file (0 bytes)"} for i in range(7)]
    report_left_out(bad, ["class X has no image in test"], shown=5, listed_in="run/data.json")
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "left out: Pro/0.jpg: empty file (0 bytes)" and len(err) == 7
    assert err[5] == "left out: 2 more file(s), all listed in run/data.json"
    assert err[6] == "warning: class X has no image in test"


def test_threads_saving_the_same_cache_entry_at_once_all_succeed(tmp_path):
    # a dataset with exact duplicates has two worker threads of one process write one entry together
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from leukoscope.io_utils import save_npy_atomic

    target = tmp_path / "ab" / "entry.npy"
    arrays = [np.full((64, 64, 3), i, np.uint8) for i in range(16)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda a: save_npy_atomic(target, a), arrays))
    assert np.load(target).shape == (64, 64, 3)
    assert [p.name for p in target.parent.iterdir()] == ["entry.npy"]  # no temporary file left behind
