from leukoscope.progress import LineProgress, progress


def test_a_log_gets_one_whole_line_per_tenth(capsys):
    bar = LineProgress(250, "preprocessing")
    for _ in range(250):
        bar.update()
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "\r" not in err and len(lines) == 10
    assert lines[0].startswith("preprocessing: 10 % (25/250 img") and lines[-1].startswith("preprocessing: 100 % (250/250 img")


def test_a_small_job_gets_only_its_last_line(capsys):
    assert list(progress(range(7), "scanning")) == list(range(7))  # pytest's stderr is not a terminal
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("scanning: 100 % (7/7 img")
