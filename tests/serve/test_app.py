import io
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="module")
def server(tiny_run, launch):
    yield launch(tiny_run / "bundle")


TOKEN = "lab-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def guarded(tiny_run, tmp_path_factory, launch):
    """A server with a token and an audit log; yields its URL and the log's path."""
    folder = tmp_path_factory.mktemp("guarded")
    (folder / "token").write_text(TOKEN + "\n")
    log = folder / "audit" / "requests.jsonl"
    yield launch(tiny_run / "bundle", "--token-file", str(folder / "token"), "--audit-log", str(log)), log


def test_token_guards_every_api_call_and_the_audit_log_keeps_a_line_each(guarded, synth_dir, tiny_run):
    import hashlib
    import json

    url, log = guarded
    image = sorted((synth_dir / "Pre").glob("*.jpg"))[0]
    upload = {"files": (image.name, image.read_bytes(), "image/jpeg")}
    assert httpx.get(f"{url}/healthz").status_code == 200  # health and the page need no token
    assert httpx.get(f"{url}/").status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong-token-000000000"}, {"Authorization": TOKEN}):
        r = httpx.post(f"{url}/v1/predict", files=upload, headers=headers)
        assert r.status_code == 401 and "token" in r.json()["error"] and r.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{url}/v1/model").status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = httpx.post(f"{url}/v1/predict", files=[("files", (image.name, image.read_bytes(), "image/jpeg")), ("files", ("notes.jpg", b"text", "image/jpeg"))], headers=auth, timeout=30)
    assert r.status_code == 200 and [row["status"] for row in r.json()] == ["ok", "error"]
    assert httpx.get(f"{url}/v1/model", headers=auth).status_code == 200
    lines = log.read_text().splitlines()
    entries = [json.loads(line) for line in lines]  # whole lines only
    assert [(e["endpoint"], e["status"]) for e in entries] == [("POST /v1/predict", 401)] * 3 + [("GET /v1/model", 401), ("POST /v1/predict", 200), ("GET /v1/model", 200)]
    weights = hashlib.sha256((tiny_run / "bundle" / "model.safetensors").read_bytes()).hexdigest()
    assert {e["bundle_sha256"] for e in entries} == {weights}
    ok = entries[4]
    assert [u["sha256"] for u in ok["uploads"]] == [hashlib.sha256(image.read_bytes()).hexdigest(), hashlib.sha256(b"text").hexdigest()]
    assert [u["name"] for u in ok["uploads"]] == [image.name, "notes.jpg"]
    assert ok["results"][0]["label"] in ("Benign", "Early", "Pre", "Pro") and "confidence" in ok["results"][0] and "ood" in ok["results"][0]
    assert ok["results"][1]["status"] == "error" and "not a readable image" in ok["results"][1]["error"]
    assert all(e["duration_ms"] >= 0 and e["time"].endswith("+00:00") for e in entries)
    assert "error" in entries[0] and len(log.read_bytes()) < 10_000  # never the image itself


def test_listening_beyond_this_machine_without_a_token_is_refused(cli, tiny_run, tmp_path, free_port, monkeypatch):
    def listen(*args, **kwargs):
        raise AssertionError("the service started listening")

    monkeypatch.setattr("uvicorn.run", listen)
    res = cli("serve", str(tiny_run / "bundle"), "--host", "0.0.0.0", "--port", str(free_port))
    assert res.returncode == 2 and "refusing to listen on 0.0.0.0 without a token" in res.stderr
    (tmp_path / "short").write_text("abc\n")
    res = cli("serve", str(tiny_run / "bundle"), "--token-file", str(tmp_path / "short"))
    assert res.returncode == 2 and "at least 16 characters" in res.stderr
    monkeypatch.setenv("LEUKOSCOPE_TOKEN", "abc")
    res = cli("serve", str(tiny_run / "bundle"))
    assert res.returncode == 2 and "LEUKOSCOPE_TOKEN: a token must be" in res.stderr


def _jpeg(path: Path) -> bytes:
    return path.read_bytes()


def test_api_predict_explain_model_health(server, synth_dir):
    files = sorted((synth_dir / "Pre").glob("*.jpg"))[:2]
    r = httpx.post(f"{server}/v1/predict", files=[("files", (f.name, _jpeg(f), "image/jpeg")) for f in files], timeout=30)
    assert r.status_code == 200
    rows = r.json()
    assert [row["path"] for row in rows] == [f.name for f in files]
    assert {"label", "confidence", "abstain", "ood", "ood_score", "screen", "p_Pre"} <= set(rows[0])
    r = httpx.post(f"{server}/v1/explain", files={"file": (files[0].name, _jpeg(files[0]), "image/jpeg")}, timeout=30)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content[:4] == b"\x89PNG"
    card = httpx.get(f"{server}/v1/model").json()
    assert card["classes"] == ["Benign", "Early", "Pre", "Pro"] and "not a medical device" in card["intended_use"].lower()
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}


def test_a_batch_with_a_bad_file_answers_200_with_an_error_entry_for_it(server, synth_dir):
    good = sorted((synth_dir / "Pre").glob("*.jpg"))[:2]
    files = [("files", (good[0].name, _jpeg(good[0]), "image/jpeg")), ("files", ("notes.jpg", b"plain text", "image/jpeg")),
             ("files", (good[1].name, _jpeg(good[1]), "image/jpeg"))]
    r = httpx.post(f"{server}/v1/predict", files=files, timeout=30)
    assert r.status_code == 200
    rows = r.json()
    assert [row["path"] for row in rows] == [good[0].name, "notes.jpg", good[1].name]
    assert [row["status"] for row in rows] == ["ok", "error", "ok"]
    assert "not a readable image" in rows[1]["error"] and "label" not in rows[1] and rows[0]["label"] in ("Benign", "Early", "Pre", "Pro")


def test_api_errors_are_json(server, tmp_path):
    r = httpx.post(f"{server}/v1/predict", files={"files": ("notes.jpg", b"plain text, no image", "image/jpeg")})
    assert r.status_code == 415 and "notes.jpg" in r.json()["error"]
    big = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (800, 800, 3), dtype=np.uint8)).save(big, format="PNG")
    assert len(big.getvalue()) > 1024 * 1024
    r = httpx.post(f"{server}/v1/predict", files={"files": ("big.png", big.getvalue(), "image/png")})
    assert r.status_code == 413 and "error" in r.json()
    r = httpx.post(f"{server}/v1/predict", files={"files": ("../../etc/passwd", b"x", "image/jpeg")})
    assert r.status_code == 415 and "/etc" not in r.json()["error"]  # client paths are only display names
    plain = io.BytesIO()
    Image.new("RGB", (64, 64), (230, 225, 225)).save(plain, format="PNG")
    r = httpx.post(f"{server}/v1/predict", files={"files": ("field.png", plain.getvalue(), "image/png")}, data={"pixel_size": "0.1"})
    error = r.json()["error"]
    assert r.status_code == 422 and error.startswith("pixel_size: a pixel scale applies to cell-level models only") and "bundle" not in error
    r = httpx.post(f"{server}/v1/predict", data={"image": "x"})
    assert r.status_code == 422 and r.json() == {"error": "invalid request (files: field required); send images as multipart form data"}
    r = httpx.get(f"{server}/v1/nothing")
    assert r.status_code == 404 and r.json() == {"error": "GET /v1/nothing: not found"}
    assert httpx.get(f"{server}/v1/predict").json() == {"error": "GET /v1/predict: method not allowed"}


def test_bounded_load(server, synth_dir):
    payload = _jpeg(sorted((synth_dir / "Early").glob("*.jpg"))[0])
    latencies, errors = [], []

    def one(_):
        start = time.perf_counter()
        try:
            r = httpx.post(f"{server}/v1/predict", files={"files": ("x.jpg", payload, "image/jpeg")}, timeout=60)
            if r.status_code != 200:
                errors.append(r.status_code)
        except httpx.HTTPError as exc:
            errors.append(repr(exc))
        latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(500)))
    wall = time.perf_counter() - start
    latencies.sort()
    p50, p99 = statistics.median(latencies), latencies[int(0.99 * len(latencies)) - 1]
    print(f"\nload: 500 requests, 16 concurrent, {len(errors)} errors, p50 {1000 * p50:.0f} ms, p99 {1000 * p99:.0f} ms, {500 / wall:.0f} req/s")
    assert errors == []


CHROMIUM = "/usr/bin/chromium"


def test_page_in_headless_chromium(server, synth_dir, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium not installed (.ci/run installs it)")
    playwright = pytest.importorskip("playwright.sync_api")
    image = sorted((synth_dir / "Pro").glob("*.jpg"))[0]
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        page = browser.new_page()
        page.goto(server + "/")
        assert "Intended use" in page.inner_text("#notice")
        page.set_input_files("#files", str(image))
        page.wait_for_selector(".predicted", timeout=30_000)
        label = page.inner_text(".predicted")
        probs = page.query_selector_all(".prob")
        assert label in ("Benign", "Early", "Pre", "Pro") and len(probs) == 4
        shown = {el.get_attribute("data-class"): float(el.inner_text().rstrip(" %")) for el in probs}
        api = httpx.post(f"{server}/v1/predict", files={"files": (image.name, image.read_bytes(), "image/jpeg")}).json()[0]
        assert api["label"] == label and page.inner_text(".screen") == api["screen"]
        assert shown["Pro"] == pytest.approx(100 * api["p_Pro"], abs=0.06)
        page.wait_for_selector(".heatmap img", timeout=30_000)
        page.screenshot(path=str(tmp_path / "page.png"))
        blank = tmp_path / "blank.png"
        Image.new("RGB", (96, 96), "white").save(blank)
        page = browser.new_page()
        page.goto(server + "/")
        page.set_input_files("#files", str(blank))
        page.wait_for_selector(".flag.ood", timeout=30_000)
        assert "no leukocyte found" in page.inner_text(".flag.ood")  # the page says why it is flagged
        browser.close()


def test_page_asks_for_the_token_once_and_keeps_it_for_the_tab(guarded, synth_dir):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium not installed (.ci/run installs it)")
    playwright = pytest.importorskip("playwright.sync_api")
    url, _ = guarded
    images = sorted((synth_dir / "Pro").glob("*.jpg"))[:2]
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"])
        page = browser.new_page()
        asked = []
        page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept(TOKEN)))
        page.goto(url + "/")
        page.wait_for_function("document.getElementById('model').textContent.startsWith('Model:')", timeout=30_000)
        page.set_input_files("#files", [str(i) for i in images])
        page.wait_for_function("document.querySelectorAll('.predicted').length == 2", timeout=60_000)
        assert len(asked) == 1 and "token" in asked[0]
        browser.close()


def test_listening_beyond_this_machine_is_warned_about():
    from leukoscope.serve.app import exposure_warning

    assert exposure_warning("127.0.0.1") is None and exposure_warning("::1") is None and exposure_warning("localhost") is None
    for host in ("0.0.0.0", "192.168.1.20", "lab-server.local"):
        assert "no authentication" in exposure_warning(host)
        assert "no TLS" in exposure_warning(host, token=True) and "no authentication" not in exposure_warning(host, token=True)
