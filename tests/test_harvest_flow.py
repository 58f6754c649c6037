"""The harvest flow end to end under Prefect: real videos downloaded by yt-dlp from a local HTTP
server, every bad input as a status row, resume after SIGKILL with exactly the same rows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hmmr.config import Settings
from warehouse.catalog import read_only_query

from .conftest import REPO, hmmr_env

TABLES = ("videos", "shots", "detections", "tracks", "track_frames")


def q(home: Path, sql: str) -> list[dict]:
    return read_only_query(Settings(home=home), sql).to_pylist()


@pytest.fixture(scope="module")
def harvested(http_base, tmp_path_factory, prefect_harness):
    """One harvest over good and bad sources, run as a Prefect flow."""
    from flows.harvest import harvest

    home = tmp_path_factory.mktemp("home")
    sources = home / "sources.txt"
    sources.write_text(
        "\n".join(
            [
                f"{http_base}/pose2sim_multi_cam03.mp4 #crossing",
                f"{http_base}/pose2sim_single_cam01.mp4 #lab channel=pose2sim",
                f"{http_base}/missing.mp4",
                f"{http_base}/page.html",
                f"{http_base}/notes.mp4",
                f"{http_base}/truncated.mp4",
                f"{http_base}/audio_only.m4a",
                f"{http_base}/empty.mp4",
                f"{http_base}/nobody.mp4",
                "this line is not a source",
                f"{http_base}/pose2sim_single_cam01.mp4 #again",
            ]
        )
        + "\n"
    )
    result = harvest(sources=str(sources), home=str(home), progress=False)
    return home, sources, result


def test_every_source_gets_a_status_row(harvested):
    home, _, result = harvested
    rows = {r["source"].rsplit("/", 1)[-1]: r for r in q(home, "SELECT * FROM videos")}
    assert len(rows) == 11 - 1  # the duplicate shares the file name: checked below
    status = {k: v["status"] for k, v in rows.items()}
    assert status["pose2sim_multi_cam03.mp4"] == "ok"
    assert status["missing.mp4"] == "download_failed" and "404" in rows["missing.mp4"]["error"]
    assert status["page.html"] == "download_failed" and "Unsupported URL" in rows["page.html"]["error"]
    assert status["notes.mp4"] == "invalid_video" and "not a readable video" in rows["notes.mp4"]["error"]
    assert status["truncated.mp4"] == "invalid_video" and "truncated" in rows["truncated.mp4"]["error"]
    assert status["audio_only.m4a"] == "invalid_video" and "no video stream" in rows["audio_only.m4a"]["error"]
    assert status["empty.mp4"] == "download_failed" and "no data" in rows["empty.mp4"]["error"].lower().replace("not get any data", "no data")
    assert status["nobody.mp4"] == "no_people" and rows["nobody.mp4"]["n_frames"] == 60
    assert status["this line is not a source"] == "bad_source"
    single = q(home, "SELECT status, tags, error FROM videos WHERE source LIKE '%single_cam01%' ORDER BY status")
    assert [r["status"] for r in single] == ["duplicate", "ok"]
    assert '"hashtag": "lab"' in single[1]["tags"] and "same video as" in single[0]["error"]
    assert sum(result["processed"].values()) == 11


def test_people_and_tracks_stored(harvested):
    home, _, _ = harvested
    v = q(home, "SELECT * FROM videos WHERE source LIKE '%single_cam01.mp4 %' OR source LIKE '%single_cam01.mp4' ORDER BY status DESC")[0]
    assert v["status"] == "ok"
    assert (v["width"], v["height"], v["fps"], v["n_frames"], v["codec"]) == (1080, 1920, 60.0, 100, "h264")
    per_frame = q(home, f"SELECT frame, count(*) AS n FROM detections WHERE video_id = '{v['video_id']}' GROUP BY frame")
    two = sum(r["n"] == 2 for r in per_frame)
    assert two >= 90, f"subject + bystander in only {two} of 100 frames"
    kept = q(home, f"SELECT * FROM curated_tracks WHERE video_id = '{v['video_id']}' ORDER BY track_id")
    assert len(kept) == 2 and all(t["n_frames"] >= 90 for t in kept)
    assert '"hashtag": "lab"' in kept[0]["tags"]
    d = q(home, f"SELECT kp_x, kp_y, kp_conf FROM detections WHERE video_id = '{v['video_id']}' LIMIT 1")[0]
    assert len(d["kp_x"]) == len(d["kp_y"]) == len(d["kp_conf"]) == 25
    tracks = q(home, f"SELECT n_frames FROM tracks WHERE video_id = '{v['video_id']}'")
    frames = q(home, f"SELECT count(*) AS n FROM track_frames WHERE video_id = '{v['video_id']}'")[0]["n"]
    assert frames == sum(t["n_frames"] for t in tracks)
    shots = q(home, f"SELECT * FROM shots WHERE video_id = '{v['video_id']}'")
    assert [(s["start_frame"], s["end_frame"]) for s in shots] == [(0, 100)]


def test_identities_stable_through_the_crossing(harvested):
    """In cam03 the subject walks in front of the CG woman: each kept track must stay on one person,
    i.e. its box centre never jumps between the two people from one frame to the next."""
    home, _, _ = harvested
    vid = q(home, "SELECT video_id FROM videos WHERE source LIKE '%multi_cam03%'")[0]["video_id"]
    rows = q(home, f"SELECT raw_track_id, frame, (x0 + x1) / 2 AS cx FROM detections WHERE video_id = '{vid}' AND raw_track_id IS NOT NULL ORDER BY raw_track_id, frame")
    by_track: dict[int, list] = {}
    for r in rows:
        by_track.setdefault(r["raw_track_id"], []).append((r["frame"], r["cx"]))
    long_tracks = [t for t in by_track.values() if len(t) >= 40]
    assert len(long_tracks) == 2
    for track in long_tracks:
        jumps = [abs(b[1] - a[1]) for a, b in zip(track, track[1:]) if b[0] - a[0] == 1]
        assert max(jumps) < 120, f"a track jumps {max(jumps):.0f} px in one frame: identity switch"


def test_rerun_skips_everything_and_duplicates_nothing(harvested, prefect_harness):
    from flows.harvest import harvest

    home, sources, _ = harvested
    before = {t: q(home, f"SELECT count(*) AS n FROM {t}")[0]["n"] for t in TABLES}
    result = harvest(sources=str(sources), home=str(home), progress=False)
    assert result["processed"] == {} and result["skipped"] == 11
    assert {t: q(home, f"SELECT count(*) AS n FROM {t}")[0]["n"] for t in TABLES} == before


EXCLUDE = {"videos": "EXCLUDE (harvested_at, run_id, raw_path)"}


def _table_dump(home: Path) -> dict[str, list]:
    """Every row of every table, minus what differs between two runs by design."""
    return {t: q(home, f"SELECT * {EXCLUDE.get(t, '')} FROM {t} ORDER BY ALL") for t in TABLES}


def test_sigkill_mid_video_then_resume_gives_the_same_rows(http_base, tmp_path, samples):
    """Kill the CLI with SIGKILL while it works on the second video; run again; compare every row
    with an uninterrupted run."""
    sources = tmp_path / "sources.txt"
    sources.write_text(f"{http_base}/pose2sim_single_cam01.mp4\n{http_base}/pose2sim_multi_cam01.mp4\n")
    hmmr = [sys.executable, "-m", "hmmr.cli"]

    clean = tmp_path / "clean"
    subprocess.run([*hmmr, "harvest", str(sources), "--no-progress"], env=hmmr_env(clean), check=True, cwd=REPO, timeout=600)

    killed = tmp_path / "killed"
    proc = subprocess.Popen([*hmmr, "harvest", str(sources), "--no-progress"], env=hmmr_env(killed), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    try:
        while time.time() < deadline:  # wait until the first video is committed, then kill mid-second
            if (killed / "catalog.sqlite").exists() and _ok_count(killed) >= 1:
                break
            time.sleep(0.2)
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert _ok_count(killed) == 1, "the kill must land while the second video is in progress"
    subprocess.run([*hmmr, "harvest", str(sources), "--no-progress"], env=hmmr_env(killed), check=True, cwd=REPO, timeout=600)
    assert _ok_count(killed) == 2
    assert _table_dump(killed) == _table_dump(clean)


def _ok_count(home: Path) -> int:
    try:
        return q(home, "SELECT count(*) AS n FROM videos WHERE status = 'ok'")[0]["n"]
    except Exception:  # catalog not created yet
        return 0


def test_render_overlay_and_still(harvested, tmp_path):
    """The overlay has the input's frame count and rate; pixels change where people are, not elsewhere."""
    import cv2
    import numpy as np
    from typer.testing import CliRunner

    from hmmr.cli import app
    from pose_harvest.video import FrameStream, probe

    home, _, _ = harvested
    runner = CliRunner()
    out = tmp_path / "overlay.mp4"
    res = runner.invoke(app, ["render", "multi_cam03", "-o", str(out), "--home", str(home)])
    assert res.exit_code == 0, res.output
    info = probe(out)
    assert (info.n_frames, info.fps, info.width, info.height) == (100, 60.0, 1088, 1920)

    still = tmp_path / "f50.png"
    res = runner.invoke(app, ["render", "multi_cam03", "--frame", "50", "-o", str(still), "--home", str(home)])
    assert res.exit_code == 0, res.output
    drawn = cv2.cvtColor(cv2.imread(str(still)), cv2.COLOR_BGR2RGB).astype(int)
    raw_path = q(home, "SELECT raw_path FROM videos WHERE source LIKE '%multi_cam03%'")[0]["raw_path"]
    plain = next(f for i, f in FrameStream(Path(raw_path), 1088, 1920) if i == 50).astype(int)
    changed = np.abs(drawn - plain).sum(-1) > 60
    people = np.zeros_like(changed)
    for b in q(home, "SELECT x0, y0, x1, y1 FROM detections JOIN videos USING (video_id) WHERE source LIKE '%multi_cam03%' AND frame = 50"):
        people[max(0, int(b["y0"]) - 60):int(b["y1"]) + 10, max(0, int(b["x0"]) - 10):int(b["x1"]) + 10] = True
    assert people.any() and changed[people].mean() > 0.01
    assert changed[~people].mean() < 0.001
