"""Sources files: formats, tags, bad lines, stable ids, expansion through yt-dlp."""

from __future__ import annotations

import json

import pytest
from yt_dlp.utils import YoutubeDLError

from pose_harvest.sources import expand, read_sources, video_id_for


def test_text_file_with_tags_comments_and_bad_lines(tmp_path, samples):
    clip = samples / "pose2sim_single_cam01.mp4"
    f = tmp_path / "sources.txt"
    f.write_text(
        "# my sources\n"
        "\n"
        f"{clip} #dance #lab channel=pose2sim\n"
        "https://www.youtube.com/watch?v=abc123 #vlog\n"
        "ytsearch3:jumping jacks\n"
        "not a url or a file\n"
        "gopher://old.example/video\n"
    )
    entries = read_sources(f)
    assert [e.line for e in entries] == [3, 4, 5, 6, 7]
    local, yt, search, bad, scheme = entries
    assert local.url == clip.resolve().as_uri() and local.error is None
    assert local.tags == {"hashtag": "dance,lab", "channel": "pose2sim"}
    assert yt.url == "https://www.youtube.com/watch?v=abc123" and yt.tags == {"hashtag": "vlog"}
    assert search.url == "ytsearch3:jumping jacks"
    assert bad.url is None and "not a URL and not an existing file" in bad.error
    assert scheme.url is None and "unsupported URL scheme" in scheme.error


def test_csv_and_json(tmp_path, samples):
    clip = samples / "sports2d_demo.mp4"
    c = tmp_path / "s.csv"
    c.write_text(f"url,hashtag,channel\n{clip},sport,\nhttps://example.org/a.mp4,,vlogs\n")
    e = read_sources(c)
    assert e[0].tags == {"hashtag": "sport"} and e[1].tags == {"channel": "vlogs"} and e[0].line == 2
    j = tmp_path / "s.json"
    j.write_text(json.dumps([str(clip), {"url": "https://example.org/b.mp4", "hashtag": "dance", "tags": {"lang": "fr"}}, 42]))
    e = read_sources(j)
    assert e[0].url == clip.resolve().as_uri()
    assert e[1].tags == {"hashtag": "dance", "lang": "fr"}
    assert e[2].error is not None
    bad = tmp_path / "bad.csv"
    bad.write_text("link\nhttps://x.org/a.mp4\n")
    with pytest.raises(ValueError, match="'url'"):
        read_sources(bad)


def test_video_ids_are_stable():
    assert video_id_for("https://www.youtube.com/watch?v=x", "Youtube", "x") == "youtube:x"
    a = video_id_for("HTTP://Example.org/a.mp4#t=3", "generic", "a")
    assert a == video_id_for("http://example.org/a.mp4") and a.startswith("url:")
    assert a != video_id_for("http://example.org/b.mp4")


def test_expand_direct_file_over_http(http_base, tmp_path):
    f = tmp_path / "s.txt"
    f.write_text(f"{http_base}/pose2sim_single_cam01.mp4 #lab\n{http_base}/missing.mp4\n")
    ok, missing = read_sources(f)
    (ref,) = expand(ok)
    assert ref.video_id == video_id_for(ok.url) and ref.entry is ok
    with pytest.raises(YoutubeDLError, match="404"):
        expand(missing)
