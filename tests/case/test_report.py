import re
import shutil
import subprocess
from pathlib import Path

import pytest

from leukoscope.case.analyse import Case, read_field
from leukoscope.case.report import TO_REVIEW, gallery_groups, write_case
from leukoscope.inference.predictor import Predictor

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def report(cell_bundle, case_fields, tmp_path_factory):
    case = Case("patient-7", Predictor(cell_bundle))
    case.add([read_field(str(p), 50_000_000) for p in case_fields])
    return case, write_case(case, tmp_path_factory.mktemp("report") / "case") / "case.html"


def test_the_gallery_puts_flagged_cells_first_then_each_class_by_confidence(report):
    case, _ = report
    groups = gallery_groups(case)
    names = [name for name, _ in groups]
    assert sum(len(cells) for _, cells in groups) == len(case.cells)  # every cell once
    if TO_REVIEW in names:
        assert names[0] == TO_REVIEW and all(c["abstain"] for c in groups[0][1])
    for name, cells in groups:
        assert [c["confidence"] for c in cells] == sorted((c["confidence"] for c in cells), reverse=True)
        if name != TO_REVIEW:
            assert {c["label"] for c in cells} == {name} and not any(c["abstain"] for c in cells)


def test_the_report_is_self_contained_and_names_the_model(report, cell_bundle):
    case, html_path = report
    html = html_path.read_text()
    assert not re.search(r'(src|href)="(?!data:)', html)  # every image inline: the file travels alone
    assert html.count('class="tile"') == len(case.cells) and html.count('class="field"') == len(case.fields)
    assert cell_bundle.weights_sha256 in html and "Intended use" in html and "@page { size: A4" in html


def test_the_report_prints_to_a4_with_the_summary_alone_on_page_one(report, tmp_path):
    if not Path(CHROMIUM).exists() or not shutil.which("pdfinfo"):
        pytest.skip("Debian chromium and poppler-utils not installed (.ci/run installs them)")
    playwright = pytest.importorskip("playwright.sync_api")
    _, html_path = report
    pdf = tmp_path / "case.pdf"
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        page = browser.new_page()
        page.goto(html_path.as_uri())
        page.pdf(path=str(pdf), prefer_css_page_size=True)
        browser.close()
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    width, height = map(float, re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", info).groups())
    assert pages >= 2 and (round(width), round(height)) == (595, 842)  # A4
    first = subprocess.run(["pdftotext", "-f", "1", "-l", "1", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "leukoscope case report: patient-7" in first and "Counts per class" in first and "Weights (SHA-256)" in first
    assert "Gallery" not in first  # the gallery starts on page 2
    second = subprocess.run(["pdftotext", "-f", "2", "-l", "2", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "Gallery" in second
