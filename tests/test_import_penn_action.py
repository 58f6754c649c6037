"""Penn Action label files, written here as the dataset ships them (MATLAB 5 ``labels/NNNN.mat`` with
``x``, ``y``, ``visibility`` (nframes x 13), ``bbox``, ``dimensions``, ``nframes``, ``action``,
``pose``, ``train``), into the warehouse: one video, one ground-truth person per file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from hmmr.config import Settings
from pose_harvest.keypoints import HMMR25
from warehouse.catalog import read_only_query
from warehouse.importers.penn_action import PennActionFormatError, import_penn_action, read_penn_action

# Penn Action columns as the official HMMR code reads them: head, R/L shoulder, R/L elbow, R/L wrist,
# R/L hip, R/L knee, R/L ankle; pixels relative to the hips' middle of a person facing the camera
OFFSETS = np.array([(0, -190), (-30, -130), (30, -130), (-40, -80), (40, -80), (-45, -35), (45, -35),
                    (-15, 0), (15, 0), (-17, 70), (17, 70), (-18, 140), (18, 140)], np.float64)


def penn_file(path: Path, n: int, *, action="jumping_jacks", pose="front", train=1, short_bbox=True) -> Path:
    t = np.arange(n)[:, None]
    x = 320 + OFFSETS[:, 0][None] + 0.5 * t
    y = 250 + OFFSETS[:, 1][None] + 0 * t
    vis = np.ones((n, 13), np.uint8)
    vis[10:20, 6] = 0  # L wrist occluded for a while: position still annotated
    bbox = np.c_[x.min(1) - 5, y.min(1) - 5, x.max(1) + 5, y.max(1) + 5]
    scipy.io.savemat(str(path), {
        "action": action, "pose": pose, "x": x, "y": y, "visibility": vis, "train": np.array([[train]], np.uint8),
        "bbox": bbox[:-1] if short_bbox else bbox,  # some Penn files have one bbox row fewer than frames
        "dimensions": np.array([[480, 640, n]], np.uint16), "nframes": np.array([[n]], np.uint16),
    })
    return path


def test_labels_folder_into_the_warehouse(tmp_path):
    labels = tmp_path / "Penn_Action" / "labels"
    labels.mkdir(parents=True)
    penn_file(labels / "0042.mat", 45)
    penn_file(labels / "0007.mat", 30, action="tennis_serve", pose="back", train=0, short_bbox=False)
    home = tmp_path / "home"
    got = import_penn_action([labels], Settings(home=home))
    assert [(r.video_id, r.n_frames, r.n_people, r.n_detections, r.n_tracks_kept) for r in got] == [
        ("penn_action:0007", 30, 1, 30, 0), ("penn_action:0042", 45, 1, 45, 1)]
    q = lambda sql: read_only_query(Settings(home=home), sql).to_pylist()  # noqa: E731
    v = q("SELECT * FROM videos WHERE video_id = 'penn_action:0042'")[0]
    assert (v["status"], v["width"], v["height"], v["n_frames"], v["raw_path"], v["detector"]) == ("ok", 640, 480, 45, None, "penn_action")
    assert json.loads(v["tags"]) == {"action": "jumping_jacks", "dataset": "penn_action", "import": "penn_action", "pose": "front", "train": True}
    assert json.loads(q("SELECT tags FROM videos WHERE video_id = 'penn_action:0007'")[0]["tags"])["train"] is False
    t = q("SELECT track_id, raw_track_id, start_frame, end_frame, kept, drop_reason FROM tracks ORDER BY video_id")
    assert [tuple(r.values()) for r in t] == [(0, 0, 0, 29, False, "too_short"), (0, 0, 0, 44, True, None)]
    d = q("SELECT frame, x0, y0, x1, y1, kp_x, kp_y, kp_conf FROM detections WHERE video_id = 'penn_action:0042' ORDER BY frame")
    f = d[12]
    kp = np.stack([f["kp_x"], f["kp_y"], f["kp_conf"]], -1)
    cx, cy = 320 + 0.5 * 12, 250
    for name, col in (("head_top", 0), ("right_shoulder", 1), ("left_shoulder", 2), ("right_ankle", 11), ("right_heel", 11),
                      ("left_ankle", 12), ("left_heel", 12), ("right_wrist", 5)):
        np.testing.assert_allclose(kp[HMMR25.index(name)], [cx + OFFSETS[col, 0], cy + OFFSETS[col, 1], 1], err_msg=name)
    np.testing.assert_allclose(kp[HMMR25.index("left_wrist")], [cx + 45, cy - 35, 0])  # occluded: kept, confidence 0
    np.testing.assert_allclose(kp[HMMR25.index("neck")], [cx, cy - 130, 1])  # from the shoulders
    assert not kp[HMMR25.index("nose")].any()
    np.testing.assert_allclose([f["x0"], f["y0"], f["x1"], f["y1"]], [cx - 50, cy - 195, cx + 50, cy + 145])
    last = d[-1]  # no bbox row for the last frame: the box of its keypoints
    np.testing.assert_allclose([last["x0"], last["y0"], last["x1"], last["y1"]], [320 + 22 - 45, 250 - 190, 320 + 22 + 45, 250 + 140])


def test_not_penn_action(tmp_path):
    scipy.io.savemat(str(tmp_path / "other.mat"), {"joints": np.zeros((3, 14))})
    with pytest.raises(PennActionFormatError, match="no x, y, visibility, nframes"):
        read_penn_action(tmp_path / "other.mat")
    (tmp_path / "text.mat").write_text("not a mat file")
    with pytest.raises(PennActionFormatError, match="not a MATLAB label file"):
        read_penn_action(tmp_path / "text.mat")
    bad = penn_file(tmp_path / "0001.mat", 5)
    mat = scipy.io.loadmat(str(bad))
    mat["x"] = mat["x"][:, :12]
    scipy.io.savemat(str(bad), {k: v for k, v in mat.items() if not k.startswith("__")})
    with pytest.raises(PennActionFormatError, match=r"\(5, 13\)"):
        import_penn_action([bad], Settings(home=tmp_path / "home"))
    assert not (tmp_path / "home" / "catalog.sqlite").exists()
