"""Real servers for the service tests: `leukoscope serve` in its own process on a free loopback port."""

import socket
import subprocess
import sys
import time

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def free_port() -> int:
    return _free_port()


@pytest.fixture(scope="module")
def launch():
    """Start `leukoscope serve BUNDLE *extra` and wait for /healthz; returns its URL. Stopped with the module."""
    started = []

    def start(bundle, *extra: str) -> str:
        port = _free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "leukoscope.cli", "serve", str(bundle), "--port", str(port), "--max-upload-mb", "1", *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                time.sleep(0.3)
        proc.kill()
        pytest.fail("server did not start")

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(10)
