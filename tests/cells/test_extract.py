import csv
import json
import subprocess
import sys

from leukoscope.data.discover import discover
from leukoscope.data.manifest import build_manifest
from leukoscope.data.split import make_splits


def test_cells_command_writes_crops_manifest_preview_and_counts(tmp_path, synth_dir):
    res = subprocess.run([sys.executable, "-m", "leukoscope.cli", "cells", str(synth_dir), "--out", str(tmp_path / "cells")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((tmp_path / "cells" / "summary.json").read_text())
    assert summary["images"] == 48 and summary["fraction_with_cells"] >= 0.95
    rows = list(csv.DictReader(open(tmp_path / "cells" / "cells.csv")))
    assert len(rows) == summary["cells"] and all((tmp_path / "cells" / r["path"]).is_file() for r in rows)
    assert (tmp_path / "cells" / "preview.png").is_file()
    # the crop manifest is a dataset whose groups are the source fields: crops of one field never straddle splits
    manifest = build_manifest(discover(tmp_path / "cells" / "cells.csv"), workers=1)
    doc = make_splits(manifest, test_fraction=0.25, seed=0)
    source_of = {r["path"]: r["group"] for r in rows}
    split_of_source = {}
    for split, paths in doc["splits"].items():
        for p in paths:
            assert split_of_source.setdefault(source_of[p], split) == split
