"""yt-dlp downloads from a real local HTTP server into the content-addressed store."""

from __future__ import annotations

import hashlib

import pytest

from pose_harvest.download import DownloadConfig, DownloadFailed, cached, download


def test_download_store_and_reuse(http_base, samples, tmp_path):
    raw, archive = tmp_path / "raw", tmp_path / "archive.txt"
    got = download(f"{http_base}/pose2sim_multi_cam03.mp4", "url:abc", raw, archive, DownloadConfig())
    digest = hashlib.sha256((samples / "pose2sim_multi_cam03.mp4").read_bytes()).hexdigest()
    assert got.sha256 == digest and got.path == (raw / digest[:2] / f"{digest}.mp4").resolve()
    assert got.path.read_bytes() == (samples / "pose2sim_multi_cam03.mp4").read_bytes()
    assert archive.read_text().strip()  # yt-dlp recorded it in its archive
    assert cached(raw, "url:abc") == got
    # Same content under another id: one file in the store.
    again = download(f"{http_base}/pose2sim_multi_cam03.mp4?copy=1", "url:def", raw, archive, DownloadConfig())
    assert again.path == got.path
    assert len([p for p in raw.rglob("*.mp4")]) == 1


def test_pointer_lost_but_in_archive_downloads_again(http_base, tmp_path):
    raw, archive = tmp_path / "raw", tmp_path / "archive.txt"
    url = f"{http_base}/pose2sim_single_cam01.mp4"
    first = download(url, "url:x", raw, archive, DownloadConfig())
    for p in (raw / "by-id").iterdir():
        p.unlink()
    assert download(url, "url:x", raw, archive, DownloadConfig()).sha256 == first.sha256


@pytest.mark.parametrize(
    "name, message", [("missing.mp4", "404"), ("page.html", "Unsupported URL")]
)
def test_permanent_failures(http_base, tmp_path, name, message):
    with pytest.raises(DownloadFailed, match=message) as info:
        download(f"{http_base}/{name}", "url:bad", tmp_path / "raw", tmp_path / "a.txt", DownloadConfig())
    assert info.value.transient is False


def test_connection_refused_is_transient(tmp_path):
    with pytest.raises(DownloadFailed) as info:
        download("http://127.0.0.1:9/x.mp4", "url:down", tmp_path / "raw", tmp_path / "a.txt",
                 DownloadConfig(retries=0, socket_timeout_s=2))
    assert info.value.transient is True
