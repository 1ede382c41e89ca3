"""A case's files: case.json, cells/ (one PNG per cell) and case.html, a self-contained printable report.

The report opens with a one-page summary (A4), then the gallery grouped by predicted class with
the flagged cells first, then every field with its cells outlined.
"""

from __future__ import annotations

import base64
import csv
import json
from html import escape
from pathlib import Path
from typing import Any

from leukoscope.case.analyse import Case
from leukoscope.cells.review import REVIEW_COLUMNS
from leukoscope.errors import OutputError
from leukoscope.io_utils import atomic_write

TO_REVIEW = "to review"

STYLE = """
@page { size: A4; margin: 14mm 12mm; }
body { font-family: system-ui, sans-serif; color: #222; max-width: 190mm; margin: 1em auto; font-size: 11pt; }
h1 { font-size: 18pt; margin: 0 0 .2em; } h2 { font-size: 13pt; margin: 1em 0 .4em; border-bottom: 1px solid #ccc; }
.notice { background: #fff4d6; border: 1px solid #e0b84c; padding: .4em .8em; border-radius: 4px; font-size: 9.5pt; }
.call { font-size: 14pt; font-weight: bold; margin: .5em 0; } .refer { color: #a00; }
table { border-collapse: collapse; } td, th { padding: .15em .6em; text-align: left; border-bottom: 1px solid #eee; }
.meta td { font-size: 9pt; color: #444; } .mono { font-family: ui-monospace, monospace; font-size: 8.5pt; word-break: break-all; }
.summary { break-after: page; page-break-after: always; }
.group { break-inside: auto; } .tiles { display: flex; flex-wrap: wrap; gap: 6px; }
.tile { width: 120px; font-size: 8pt; break-inside: avoid; page-break-inside: avoid; border: 1px solid #ddd; padding: 3px; }
.tile img { width: 112px; height: 112px; display: block; } .flag { color: #b00; }
.fields { display: flex; flex-wrap: wrap; gap: 10px; } .field { width: 88mm; break-inside: avoid; page-break-inside: avoid; font-size: 9pt; }
.field img { width: 100%; }
"""


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def gallery_groups(case: Case) -> list[tuple[str, list[dict[str, Any]]]]:
    """Flagged cells first ("to review"), then one group per predicted class; each sorted by confidence, highest first."""
    ranked = sorted(case.cells, key=lambda c: -c["confidence"])
    groups = [(TO_REVIEW, [c for c in ranked if c["abstain"]])]
    groups += [(label, [c for c in ranked if c["label"] == label and not c["abstain"]]) for label in case.classes]
    return [(name, cells) for name, cells in groups if cells]


def render_html(case: Case) -> str:
    doc = case.to_json()
    s, m = doc["summary"], doc["model"]
    unit = "cells" if case.level == "cell" else "fields"
    call = s["call"]
    call_html = (
        f'<p class="call refer">{escape(call["text"])}</p>'
        if call["label"] is None
        else f'<p class="call">Case call: {escape(call["label"])} — {_pct(call["share"])} of reliable {unit} (95 % CI {_pct(call["ci"][0])}–{_pct(call["ci"][1])}; {call["n"]} of {s["reliable"]})</p>'
    )
    rows = "".join(
        f"<tr><td>{escape(c)}</td><td>{v['n']}</td><td>{_pct(v['share'])}</td><td>{_pct(v['ci'][0])}–{_pct(v['ci'][1])}</td></tr>" for c, v in s["per_class"].items()
    )
    blast = s["blast_like"]
    note = f'<p class="notice">{escape(doc["note"])}</p>' if doc["note"] else ""
    cut_rows = ""
    if case.level == "cell":
        cut = sum(c["cut_by_frame"] for c in case.cells)
        cut_rows = f"<tr><td>Cut by the frame</td><td>{cut} of {len(case.cells)}: the model reads a benign cell cut so as malignant more often than a whole one</td></tr>\n"
    summary = f"""
<section class="summary">
<h1>leukoscope case report: {escape(case.name)}</h1>
<p class="notice"><b>Intended use:</b> {escape(doc["intended_use"])}</p>
{note}
{call_html}
<table>
<tr><td>Pixel scale</td><td>{escape(doc["pixel_scale_note"] or ("each field taken to show a training field's view" if case.level == "cell" else "whole fields, as they are"))}</td></tr>
<tr><td>Fields</td><td>{s["fields"]} ({s["fields_unreadable"]} unreadable, {s["fields_without_leukocytes"]} without a leukocyte)</td></tr>
<tr><td>Leukocytes found</td><td>{s["leukocytes"]} ({s["reliable"]} reliable, {s["leukocytes"] - s["reliable"]} to review)</td></tr>
{cut_rows}<tr><td>Blast-like {unit}</td><td>{blast["n"]} of {s["leukocytes"]}: {_pct(blast["share"])} (95 % CI {_pct(blast["ci"][0])}–{_pct(blast["ci"][1])})</td></tr>
</table>
<h2>Counts per class</h2>
<table><tr><th>class</th><th>{unit}</th><th>share</th><th>95 % CI</th></tr>{rows}</table>
<p>A {unit[:-1]} is reliable when it is neither below the model's abstain threshold ({_pct(m["abstain_threshold"])}) nor out of distribution;
the call is the class most reliable {unit} carry, and a case with fewer than {s["min_reliable"]} reliable {unit} is referred.
Subtypes of B-lymphoblasts are defined by immunophenotype: morphology alone cannot settle them.</p>
<h2>Model</h2>
<table class="meta">
<tr><td>Model</td><td>{escape(m["name"])}, {escape(", ".join(m["classes"]))}</td></tr>
<tr><td>Weights (SHA-256)</td><td class="mono">{escape(m["weights_sha256"])}</td></tr>
<tr><td>Training data fingerprint</td><td class="mono">{escape(m["training_data_fingerprint"])}</td></tr>
<tr><td>leukoscope</td><td>{escape(doc["leukoscope_version"])} (model trained with {escape(m["trained_with"])})</td></tr>
<tr><td>Created</td><td>{escape(doc["created"])}</td></tr>
</table>
</section>"""
    groups = []
    for name, cells in gallery_groups(case):
        tiles = "".join(
            f'<div class="tile"><img alt="cell {c["id"]}" src="{_data_uri(case.crops[c["id"]], "image/png")}">'
            f'#{c["id"]} {escape(c["label"])} {_pct(c["confidence"])}' + (f' w {c["attention"]:.2f}' if c["attention"] is not None else "") + f'<br>{escape(Path(c["file"]).name)}'
            + (f'<br><span class="flag">{escape(c.get("abstain_reason") or c["ood_reason"] or "low confidence")}</span>' if c["abstain"] else "")
            + ("<br>cut by the frame" if c["cut_by_frame"] else "")
            + "</div>"
            for c in cells
        )
        groups.append(f'<div class="group"><h2>{escape(name.capitalize())} ({len(cells)})</h2><div class="tiles">{tiles}</div></div>')
    fields = []
    for f, overview in zip(case.fields, case.overviews):
        if overview is None:
            fields.append(f'<div class="field"><b>{escape(Path(f["file"]).name)}</b>: <span class="flag">not read: {escape(f["error"])}</span></div>')
            continue
        verdict = f'{escape(f["label"])} {_pct(f["confidence"])}' if f["cells"] else "no leukocyte found"
        if f["cells"] and f.get("abstain"):
            verdict += f' <span class="flag">review: {escape(f["abstain_reason"])}</span>'
        fields.append(
            f'<div class="field"><img alt="{escape(f["file"])}" src="{_data_uri(overview, "image/jpeg")}"><b>{escape(Path(f["file"]).name)}</b>: {f["cells"]} {"leukocyte(s)" if case.level == "cell" else "unit(s)"}, {verdict}</div>'
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>leukoscope case {escape(case.name)}</title><style>{STYLE}</style></head>
<body>{summary}
<section><h2>Gallery</h2>{"".join(groups) or "<p>No leukocyte was found in any field.</p>"}</section>
<section><h2>Fields</h2><div class="fields">{"".join(fields)}</div></section>
</body></html>
"""


def review_rows(case: Case, reviews: dict[int, str] | None = None, reviewer: str = "", when: str = "") -> list[dict[str, Any]]:
    """review.csv's rows, one per cell (the page's "Export review" writes the same columns)."""
    reviews = reviews or {}
    rows = []
    for c in case.cells:
        label = reviews.get(c["id"], "")
        x0, y0, x1, y1 = c["box"]
        rows.append({
            "case": case.name, "field": c["file"], "field_sha256": case.fields[c["field"]]["sha256"], "cell": c["id"],
            "box_x0": x0, "box_y0": y0, "box_x1": x1, "box_y1": y1, "model_label": c["label"], "reviewed_label": label,
            "reviewer": reviewer if label else "", "time": when if label else "",
            "pixel_scale": "" if case.predictor.pixel_scale is None else round(case.predictor.pixel_scale, 4),
        })  # fmt: skip
    return rows


def write_review(rows: list[dict[str, Any]], path: str | Path) -> Path:
    with atomic_write(path, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=REVIEW_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)


def write_case(case: Case, out: str | Path) -> Path:
    """OUT/case.json, OUT/cells/NNNN.png, OUT/case.html and OUT/review.csv (every cell, none reviewed yet: a
    sheet to fill in where the page is not used); each file is written whole or not at all.

    Crops an earlier, larger case left in OUT/cells/ are removed, so the folder holds this case only.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: is a file; name a folder to write the case into")
    current = {cell["crop"] for cell in case.cells}
    for stale in (out / "cells").glob("[0-9][0-9][0-9][0-9].png"):
        if f"cells/{stale.name}" not in current:
            stale.unlink()
    for cell, png in zip(case.cells, case.crops):
        with atomic_write(out / cell["crop"], "wb") as fh:
            fh.write(png)
    with atomic_write(out / "case.json") as fh:
        json.dump(case.to_json(), fh, indent=1)
        fh.write("\n")
    with atomic_write(out / "case.html") as fh:
        fh.write(render_html(case))
    write_review(review_rows(case), out / "review.csv")
    return out
