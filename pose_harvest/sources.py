"""Sources: parse a sources file into entries, expand playlists, give every video a stable id.

A sources file is one of

* text (``.txt`` or anything else): one source per line, ``URL_OR_PATH [#hashtag ...] [key=value ...]``;
  blank lines and lines starting with ``# `` (hash + space) or ``//`` are comments;
* CSV (``.csv``): a header with a ``url`` (or ``source``) column; every other non-empty column is a tag;
* JSON (``.json``): a list of strings or of objects ``{"url": ..., "tags": {...}}`` (other keys of the
  object are tags too).

A source is a URL that yt-dlp understands (``http(s)://``, ``file://``, ``ytsearchN:...``) or a path
to a local file. Lines that are neither become entries with an ``error`` and no URL; the harvest records
them as ``bad_source`` rows instead of stopping.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

_URL_RE = re.compile(r"^(https?|file|ftp)://\S+$", re.IGNORECASE)
_SEARCH_RE = re.compile(r"^[a-z0-9]+search\d*(all)?:.+$", re.IGNORECASE)  # ytsearch5:dance


@dataclass(frozen=True)
class SourceEntry:
    """One line of a sources file.

    source: the text as the user wrote it (without tags).
    url: what to hand to yt-dlp (a URL, or ``file://`` for a local path); None when invalid.
    tags: user tags, e.g. ``{"hashtag": "dance"}``.
    line: 1-based line / row number in the file, for error messages.
    error: why the entry is unusable (then ``url`` is None).
    """

    source: str
    url: str | None
    tags: dict[str, str] = field(default_factory=dict)
    line: int = 0
    error: str | None = None


def canonical_url(url: str) -> str:
    """The URL with a lower-case scheme/host and no fragment (used for hashing)."""
    parts = urlsplit(url.strip())
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, parts.query, ""))


def site_of(url: str) -> str:
    """The site a URL downloads from, for per-site download limits: the host without ``www.``/``m.``
    (``youtube.com``), ``local`` for files on this machine."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() == "file" or not parts.hostname:
        return "local"
    host = parts.hostname.lower()
    for prefix in ("www.", "m."):
        host = host.removeprefix(prefix)
    return host


def short_hash(text: str, n: int = 16) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def video_id_for(url: str, extractor: str | None = None, extractor_id: str | None = None) -> str:
    """Stable id of a video: ``<extractor>:<id>`` when yt-dlp's extractor has real ids
    (``youtube:dQw4w9WgXcQ``), else ``url:<sha256 of the canonical URL, 16 hex>``.

    The ``generic`` extractor (plain file URLs) derives its id from the file name, which is not
    unique across servers, so it counts as having no id.
    """
    if extractor and extractor_id and extractor.lower() not in ("generic", "html5"):
        return f"{extractor.lower()}:{extractor_id}"
    return f"url:{short_hash(canonical_url(url))}"


def _resolve(text: str, base_dir: Path) -> tuple[str | None, str | None]:
    """(url, error) for one source string."""
    text = text.strip()
    if not text:
        return None, "empty source"
    if _URL_RE.match(text) or _SEARCH_RE.match(text):
        return text, None
    if "://" in text:
        return None, f"unsupported URL scheme in {text!r} (use http(s)://, file:// or a local path)"
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    if path.is_file():
        return path.resolve().as_uri(), None
    return None, f"not a URL and not an existing file: {text!r}"


def _entry(text: str, tags: dict[str, str], line: int, base_dir: Path) -> SourceEntry:
    url, error = _resolve(text, base_dir)
    return SourceEntry(source=text.strip(), url=url, tags=tags, line=line, error=error)


def _parse_text_line(raw: str) -> tuple[str, dict[str, str]]:
    tokens = raw.split()
    source, tags, hashtags = tokens[0], {}, []
    for tok in tokens[1:]:
        if tok.startswith("#") and len(tok) > 1:
            hashtags.append(tok[1:])
        elif "=" in tok:
            key, value = tok.split("=", 1)
            tags[key] = value
        else:
            source = f"{source} {tok}"  # paths with spaces
    if hashtags:
        tags["hashtag"] = ",".join(hashtags)
    return source, tags


def _read_text(path: Path) -> Iterable[tuple[str, dict[str, str], int]]:
    for n, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("# ") or stripped == "#" or stripped.startswith("//"):
            continue
        source, tags = _parse_text_line(stripped)
        yield source, tags, n


def _read_csv(path: Path) -> Iterable[tuple[str, dict[str, str], int]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        key = next((k for k in ("url", "source", "path") if k in fields), None)
        if key is None:
            raise ValueError(f"{path}: CSV needs a 'url' (or 'source') column, found {fields}")
        for n, row in enumerate(reader, 2):
            tags = {k: v for k, v in row.items() if k != key and k and v}
            yield (row.get(key) or ""), tags, n


def _read_json(path: Path) -> Iterable[tuple[str, dict[str, str], int]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ValueError(f"{path}: JSON sources must be a list of strings or objects")
    for n, item in enumerate(data, 1):
        if isinstance(item, str):
            yield item, {}, n
        elif isinstance(item, dict):
            tags = {k: str(v) for k, v in item.items() if k not in ("url", "source", "tags")}
            tags.update({k: str(v) for k, v in (item.get("tags") or {}).items()})
            yield str(item.get("url") or item.get("source") or ""), tags, n
        else:
            yield repr(item), {}, n


def read_sources(path: str | Path) -> list[SourceEntry]:
    """Parse a sources file (text, CSV or JSON by extension). Relative paths are relative to it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sources file not found: {path}")
    reader = {".csv": _read_csv, ".json": _read_json}.get(path.suffix.lower(), _read_text)
    base = path.parent.resolve()
    return [_entry(text, tags, line, base) for text, tags, line in reader(path)]


@dataclass(frozen=True)
class VideoRef:
    """One video to harvest, after playlist expansion.

    video_id: stable id (see :func:`video_id_for`); url: what yt-dlp downloads; entry: where it came
    from; title: when the extractor gave one.
    """

    video_id: str
    url: str
    entry: SourceEntry
    title: str | None = None


def expand(entry: SourceEntry, *, ydl_params: dict | None = None) -> list[VideoRef]:
    """Expand a playlist / channel / search URL into its videos; a single video gives one ref.

    Asks yt-dlp for flat metadata only (no download). ``file://`` URLs and plain local files are not
    sent to yt-dlp. Raises :class:`yt_dlp.utils.YoutubeDLError` when the URL cannot be resolved.
    """
    assert entry.url is not None, "expand() needs a valid entry"
    if entry.url.startswith("file://"):
        return [VideoRef(video_id_for(entry.url), entry.url, entry)]
    import yt_dlp

    params = {
        "quiet": True,
        "no_warnings": True,
        "extract_flat": "in_playlist",
        "skip_download": True,
        **(ydl_params or {}),
    }
    with yt_dlp.YoutubeDL(params) as ydl:
        info = ydl.extract_info(entry.url, download=False, process=True)
    if info.get("_type") in ("playlist", "multi_video"):
        refs = []
        for item in info.get("entries") or []:
            if not item:
                continue
            url = item.get("webpage_url") or item.get("url")
            if not url:
                continue
            vid = video_id_for(url, item.get("ie_key") or item.get("extractor_key"), item.get("id"))
            refs.append(VideoRef(vid, url, entry, item.get("title")))
        return refs
    vid = video_id_for(entry.url, info.get("extractor_key") or info.get("extractor"), info.get("id"))
    return [VideoRef(vid, info.get("webpage_url") or entry.url, entry, info.get("title"))]
