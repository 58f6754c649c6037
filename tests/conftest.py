"""Shared fixtures: the real sample videos, bad inputs made from them, a local HTTP server, Prefect."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from hmmr.prefect_env import configure

configure()

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def served(tmp_path_factory) -> Path:
    """A folder served over HTTP: the real sample videos plus bad inputs made from them."""
    root = tmp_path_factory.mktemp("www")
    for p in SAMPLES.glob("*.mp4"):
        shutil.copy(p, root / p.name)
    data = (SAMPLES / "sports2d_demo.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(data[:200_000])  # header says 230 frames, 1 is there
    (root / "notes.mp4").write_text("this is a text file, not a video\n")
    (root / "empty.mp4").write_bytes(b"")
    (root / "page.html").write_text("<!doctype html><html><head><title>x</title></head><body><p>Hello</p></body></html>")
    subprocess.run(  # audio only: 2 s of a sine tone
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=f=440:d=2", str(root / "audio_only.m4a")],
        check=True,
    )
    subprocess.run(  # a real video with nobody in it: 2 s of a moving test pattern
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=2",
         "-pix_fmt", "yuv420p", "-c:v", "libx264", str(root / "nobody.mp4")],
        check=True,
    )
    return root


@pytest.fixture(scope="session")
def http_base(served) -> str:
    """Base URL of a real HTTP server on 127.0.0.1 serving :func:`served` (yt-dlp downloads from it)."""
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:  # yt-dlp closes probes early
        pass


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output readable
        pass


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect API (its own database) for flows run in the tests."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    h = tmp_path / "hmmr-home"
    monkeypatch.setenv("HMMR_HOME", str(h))
    return h


def hmmr_env(home: Path) -> dict:
    """Environment for running the ``hmmr`` CLI in a subprocess against ``home``."""
    env = dict(os.environ, HMMR_HOME=str(home))
    env.pop("PREFECT_API_URL", None)
    return env
