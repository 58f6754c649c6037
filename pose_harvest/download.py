"""Download one video with yt-dlp into a content-addressed raw store.

Files land at ``RAW/<sha256[:2]>/<sha256>.<ext>``; a small pointer ``RAW/by-id/<video id>.json``
records which file belongs to which video, so a re-run (or a run killed after the download) reuses
the file instead of downloading it again. yt-dlp's own download archive, retries, rate limit and
sleep options do the rest.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yt_dlp
from yt_dlp.utils import YoutubeDLError


@dataclass(frozen=True)
class DownloadConfig:
    """yt-dlp settings (see yt-dlp's documentation of the options with the same names).

    max_height: best format no taller than this (pixels; 720 as the HMMR datasets).
    max_filesize_mb / max_duration_s: larger / longer videos are refused (``None``: no cap).
    rate_limit: bytes per second per download (``None``: unlimited).
    sleep_interval_s: pause before each download, to be polite to a site.
    """

    max_height: int = 720
    max_filesize_mb: float | None = 500.0
    max_duration_s: float | None = 1800.0
    retries: int = 3
    rate_limit: int | None = None
    sleep_interval_s: float = 0.0
    socket_timeout_s: float = 30.0


class DownloadFailed(Exception):
    """A download that did not produce a file. ``transient`` errors (timeouts, 5xx, 429) may succeed
    on retry; permanent ones (404, unsupported URL, removed video) will not."""

    def __init__(self, message: str, *, transient: bool):
        super().__init__(message)
        self.transient = transient


_TRANSIENT_MARKERS = (
    "timed out", "timeout", "temporary failure", "connection reset", "connection refused",
    "http error 429", "http error 500", "http error 502", "http error 503", "http error 504",
    "remote end closed", "incompleteread",
)


def _is_transient(message: str) -> bool:
    low = message.lower()
    return any(m in low for m in _TRANSIENT_MARKERS)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _pointer(raw_dir: Path, video_id: str) -> Path:
    safe = video_id.replace("/", "_").replace(":", "_")
    return raw_dir / "by-id" / f"{safe}.json"


@dataclass(frozen=True)
class Downloaded:
    """A video file in the raw store. path: the content-addressed file; info: yt-dlp's metadata
    subset (extractor, id, title, webpage_url, duration when known)."""

    video_id: str
    path: Path
    sha256: str
    size_bytes: int
    info: dict


def cached(raw_dir: Path, video_id: str) -> Downloaded | None:
    """The stored file of a video downloaded earlier, if it is still there."""
    ptr = _pointer(raw_dir, video_id)
    if not ptr.is_file():
        return None
    meta = json.loads(ptr.read_text())
    path = Path(meta["path"])
    if not path.is_file():
        return None
    return Downloaded(video_id, path, meta["sha256"], path.stat().st_size, meta.get("info", {}))


def _ydl_params(cfg: DownloadConfig, outdir: Path, archive: Path | None) -> dict:
    h = cfg.max_height
    params: dict = {
        "format": f"bv*[height<=?{h}]+ba/b[height<=?{h}]/bv*[height<=?{h}]",
        "outtmpl": str(outdir / "%(id)s.%(ext)s"),
        "retries": cfg.retries,
        "fragment_retries": cfg.retries,
        "socket_timeout": cfg.socket_timeout_s,
        "noplaylist": True,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "enable_file_urls": True,
        "merge_output_format": "mp4",
    }
    if archive is not None:
        params["download_archive"] = str(archive)
    if cfg.max_filesize_mb:
        params["max_filesize"] = int(cfg.max_filesize_mb * 1024 * 1024)
    if cfg.max_duration_s:
        params["match_filter"] = yt_dlp.utils.match_filter_func(f"duration <=? {cfg.max_duration_s:g}")
    if cfg.rate_limit:
        params["ratelimit"] = cfg.rate_limit
    if cfg.sleep_interval_s:
        params["sleep_interval"] = cfg.sleep_interval_s
    return params


def _fetch(url: str, params: dict) -> tuple[dict | None, list[Path]]:
    """Run yt-dlp once; (info, files written into the output folder)."""
    outdir = Path(params["outtmpl"]).parent
    try:
        with yt_dlp.YoutubeDL(params) as ydl:
            info = ydl.extract_info(url, download=True)
    except YoutubeDLError as exc:
        msg = str(exc).replace("ERROR: ", "").strip()
        raise DownloadFailed(msg, transient=_is_transient(msg)) from exc
    files = [p for p in outdir.iterdir() if p.is_file() and not p.name.endswith((".part", ".ytdl"))]
    return info, files


def download(url: str, video_id: str, raw_dir: Path, archive: Path, cfg: DownloadConfig) -> Downloaded:
    """Download ``url`` into the raw store and return the stored file.

    Raises :class:`DownloadFailed` (with ``transient`` set) when nothing usable was downloaded.
    The file is not validated here: probe it with :func:`pose_harvest.video.probe`.
    """
    if (hit := cached(raw_dir, video_id)) is not None:
        return hit
    raw_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=raw_dir, prefix=".dl-") as tmp:
        tmpdir = Path(tmp)
        info, files = _fetch(url, _ydl_params(cfg, tmpdir, archive))
        if not files and info is not None:
            # In yt-dlp's archive but our pointer is gone (e.g. a run killed between the two):
            # the archive is only a guard, so fetch again without it.
            info, files = _fetch(url, _ydl_params(cfg, tmpdir, None))
        if info is None or not files:
            reason = "rejected by the size/duration cap" if info is None else "yt-dlp wrote no file"
            raise DownloadFailed(f"no video downloaded from {url}: {reason}", transient=False)
        src = max(files, key=lambda p: p.stat().st_size)
        if src.stat().st_size == 0:
            raise DownloadFailed(f"downloaded file is empty (0 bytes): {url}", transient=False)
        digest = sha256_file(src)
        dest = raw_dir / digest[:2] / f"{digest}{src.suffix}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists():
            shutil.move(str(src), dest)
    keep = {k: info.get(k) for k in ("extractor", "extractor_key", "id", "title", "webpage_url", "duration", "uploader")}
    ptr = _pointer(raw_dir, video_id)
    ptr.parent.mkdir(parents=True, exist_ok=True)
    tmp_ptr = ptr.with_suffix(".tmp")
    tmp_ptr.write_text(json.dumps({"path": str(dest.resolve()), "sha256": digest, "url": url, "info": keep}))
    tmp_ptr.replace(ptr)
    return Downloaded(video_id, dest.resolve(), digest, dest.stat().st_size, keep)
