import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from leukoscope.data.images import read_rgb
from leukoscope.inference.predictor import Predictor
from leukoscope.serve.batching import Batcher


def test_concurrent_requests_share_model_calls_and_each_gets_its_own_rows(tiny_bundle, synth_dir):
    predictor = Predictor(tiny_bundle)
    paths = sorted(synth_dir.rglob("*.jpg"))[:12]
    units = [predictor.units(read_rgb(p)) for p in paths]
    alone = predictor.rows([p.name for p in paths], predictor.predict_units(units))
    batcher = Batcher(predictor, threading.Lock(), max_units=64, max_wait=0.2)
    requests = [(paths[i : i + 2], units[i : i + 2]) for i in range(0, 12, 2)]  # 6 requests of 2 images
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda r: batcher.predict([p.name for p in r[0]], r[1]), requests))
    assert batcher.batches < len(requests)  # requests that arrived together went through together
    got = [row for answer in answers for row in answer]
    assert [r["path"] for r in got] == [p.name for p in paths]
    for a, b in zip(got, alone):
        assert a["label"] == b["label"] and a["confidence"] == pytest.approx(b["confidence"], abs=1e-5)


def test_a_failing_batch_fails_its_requests_not_the_batcher(tiny_bundle, synth_dir):
    predictor = Predictor(tiny_bundle)
    batcher = Batcher(predictor, threading.Lock(), max_wait=0.0)
    good = predictor.units(read_rgb(sorted(synth_dir.rglob("*.jpg"))[0]))
    with pytest.raises(Exception):
        batcher.predict(["bad"], [good[:, :5]])  # units of the wrong size cannot be classified
    assert batcher.predict(["good"], [good])[0]["status"] == "ok"
