"""The ``training_windows`` view and ``windows_sql(T)`` on real imported OpenPose output, counted by hand.

The lakehouses are the real OpenPose JSON of ``samples/pose2sim_single_cam01.mp4`` imported through
the harvest's tracking and curation, once as recorded and once with four people taken out of their
frame files (OpenPose writes a frame with fewer people exactly so): the bystander missing in frames
48-50 splits his track into two kept segments of one raw track, the subject missing in frame 70 leaves
an interpolated frame in hers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hmmr.config import Settings
from warehouse.catalog import read_only_query
from warehouse.importers.openpose import import_openpose
from warehouse.windows import windows_sql

FIXTURE = Path(__file__).parent / "data" / "openpose_pose2sim_cam01_body25b"
VIDEO = Path(__file__).resolve().parents[1] / "samples" / "pose2sim_single_cam01.mp4"


def q(settings: Settings, sql: str) -> list[dict]:
    return read_only_query(settings, sql).to_pylist()


def drop_person(folder: Path, frame: int, leftmost: bool) -> None:
    """Take the leftmost (bystander) or rightmost (subject) person out of one OpenPose frame file."""
    path = folder / f"cam01.{frame:04d}.json"
    body = json.loads(path.read_text())
    mean_x = [np.mean([x for x in p["pose_keypoints_2d"][0::3] if x > 0]) for p in body["people"]]
    body["people"].pop(int(np.argmin(mean_x) if leftmost else np.argmax(mean_x)))
    path.write_text(json.dumps(body))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Settings:
    settings = Settings(home=tmp_path_factory.mktemp("recorded") / "home")
    import_openpose(FIXTURE, str(VIDEO), settings)
    return settings


@pytest.fixture(scope="module")
def gappy(tmp_path_factory) -> Settings:
    root = tmp_path_factory.mktemp("gappy")
    folder = shutil.copytree(FIXTURE, root / "json")
    for frame in (48, 49, 50):
        drop_person(folder, frame, leftmost=True)
    drop_person(folder, 70, leftmost=False)
    settings = Settings(home=root / "home")
    import_openpose(folder, str(VIDEO), settings)
    return settings


def by_hand(settings: Settings, T: int) -> dict[tuple[int, int], float]:
    """(track_id, start_frame) -> visible fraction, from the raw detection rows with numpy."""
    dets = q(settings, "SELECT frame, raw_track_id, kp_conf FROM detections")
    out = {}
    for t in q(settings, "SELECT track_id, raw_track_id, start_frame, end_frame FROM tracks WHERE kept"):
        n = t["end_frame"] - t["start_frame"] + 1
        visible = np.zeros(n)
        for d in dets:
            if d["raw_track_id"] == t["raw_track_id"] and t["start_frame"] <= d["frame"] <= t["end_frame"]:
                visible[d["frame"] - t["start_frame"]] = (np.asarray(d["kp_conf"]) >= 0.1).sum()
        for s in range(n - T + 1):
            out[(t["track_id"], t["start_frame"] + s)] = visible[s:s + T].sum() / (25 * T)
    return out


def test_a_kept_track_of_n_frames_has_n_minus_T_plus_1_windows(recorded):
    tracks = q(recorded, "SELECT track_id, start_frame, end_frame, n_frames, kept FROM tracks ORDER BY track_id")
    assert [(t["n_frames"], t["kept"]) for t in tracks] == [(38, False), (100, True), (63, True)]
    rows = q(recorded, "SELECT * FROM training_windows ORDER BY track_id, start_frame")
    assert len(rows) == (100 - 20 + 1) + (63 - 20 + 1) == 125
    tags = q(recorded, "SELECT tags FROM videos")[0]["tags"]
    for t in tracks:
        mine = [r for r in rows if r["track_id"] == t["track_id"]]
        if not t["kept"]:
            assert mine == []
            continue
        assert [r["start_frame"] for r in mine] == list(range(t["start_frame"], t["end_frame"] - 20 + 2))
        assert all(r["end_frame"] == r["start_frame"] + 19 and r["T"] == 20 and r["tags"] == tags for r in mine)
        assert mine[-1]["end_frame"] == t["end_frame"]
    assert list(rows[0]) == ["video_id", "track_id", "start_frame", "end_frame", "T", "visible_fraction", "tags"]


def test_visible_fraction_matches_the_detections_by_hand(gappy):
    tracks = q(gappy, "SELECT track_id, raw_track_id, start_frame, end_frame FROM tracks WHERE kept ORDER BY track_id")
    assert [(t["raw_track_id"], t["start_frame"], t["end_frame"]) for t in tracks] == [(1, 0, 47), (1, 51, 99), (2, 37, 99)]
    assert q(gappy, "SELECT track_id, frame FROM track_frames WHERE interpolated") == [{"track_id": 3, "frame": 70}]
    rows = q(gappy, "SELECT track_id, start_frame, visible_fraction FROM training_windows")
    expected = by_hand(gappy, 20)
    assert len(rows) == len(expected) == 29 + 30 + 44
    for r in rows:
        assert r["visible_fraction"] == pytest.approx(expected[(r["track_id"], r["start_frame"])], abs=1e-12)
    # the interpolated frame counts as 0 visible: windows over it lose that frame's keypoints
    frac = {r["start_frame"]: r["visible_fraction"] for r in rows if r["track_id"] == 3}
    n_vis = {r["frame"]: r["n_visible"] for r in q(gappy, "SELECT frame, n_visible FROM track_frames WHERE track_id = 3")}
    assert n_vis[70] == 0 and n_vis[50] > 0
    assert frac[51] * 500 == pytest.approx(sum(n_vis[f] for f in range(51, 71)))  # 51..70 holds frame 70
    assert frac[71] * 500 == pytest.approx(sum(n_vis[f] for f in range(71, 91)))


def test_materialised_windows_are_the_computed_ones(recorded, gappy):
    """The view reads track_windows, which Lake derived at write time: the same rows as windows_sql(20)
    computes from the frames, for a clean track and one with an interpolated gap."""
    for home in (recorded, gappy):
        order = " ORDER BY video_id, track_id, start_frame"
        assert q(home, "SELECT * FROM training_windows" + order) == q(home, windows_sql(20) + order)
        assert q(home, "SELECT count(*) AS n FROM track_windows")[0]["n"] == len(q(home, windows_sql(20)))


@pytest.mark.parametrize("T", [1, 40, 100])
def test_windows_sql_for_other_T(recorded, T):
    rows = q(recorded, windows_sql(T))
    expected = by_hand(recorded, T)
    assert len(rows) == len(expected) == max(0, 100 - T + 1) + max(0, 63 - T + 1)
    assert {(r["track_id"], r["start_frame"]) for r in rows} == set(expected)
    assert all(r["T"] == T and r["end_frame"] - r["start_frame"] + 1 == T for r in rows)


@pytest.mark.parametrize("T", [0, -3, 2.5])
def test_windows_sql_refuses_bad_T(T):
    with pytest.raises(ValueError, match="positive integer"):
        windows_sql(T)
