"""PoseTrack 2018 annotation files, written here in the dataset's exact JSON layout (COCO-style images
with frame_id/vid_id/file_name, annotations with track_id and 17 x 3 keypoints in PoseTrack 2018's
order, the person category with its keypoint names), into the warehouse with their real track ids."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from hmmr.config import Settings
from pose_harvest.keypoints import HMMR25, POSETRACK17
from warehouse.catalog import read_only_query
from warehouse.importers.posetrack import PoseTrackFormatError, import_posetrack, read_posetrack

SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9], [8, 10],
            [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]
# a standing person, PoseTrack 2018 order, pixels relative to the hips' middle
POSE = {"nose": (0, -160), "head_bottom": (0, -135), "head_top": (0, -195), "left_shoulder": (25, -120),
        "right_shoulder": (-25, -120), "left_elbow": (35, -70), "right_elbow": (-35, -70), "left_wrist": (40, -25),
        "right_wrist": (-40, -25), "left_hip": (15, 0), "right_hip": (-15, 0), "left_knee": (17, 70),
        "right_knee": (-17, 70), "left_ankle": (18, 140), "right_ankle": (-18, 140)}


def keypoints(cx: float, cy: float, hidden: tuple[str, ...] = ()) -> list[float]:
    out = []
    for name in POSETRACK17.joints:  # ears are never annotated in PoseTrack 2018
        if name in POSE and name not in hidden:
            dx, dy = POSE[name]
            out += [cx + dx, cy + dy, 1]
        else:
            out += [0, 0, 0]
    return out


def posetrack_file(path: Path, vid: str, n_frames: int, people: dict[int, dict[int, tuple]], split: str = "val",
                   extra_annotations: list | None = None) -> Path:
    """``people``: track_id -> frame -> (cx, cy). Ids as in the dataset: 1 + vid_id + 4-digit frame."""
    seq = f"{vid}_mpii_test"
    images = [{"has_no_densepose": True, "is_labeled": any(f in fr for fr in people.values()),
               "file_name": f"images/{split}/{seq}/{f:06d}.jpg", "nframes": n_frames,
               "frame_id": int(f"1{vid}{f:04d}"), "vid_id": vid, "ignore_regions_y": [], "ignore_regions_x": [],
               "id": int(f"1{vid}{f:04d}")} for f in range(n_frames)]
    anns, k = [], 0
    for tid, frames in people.items():
        for f, (cx, cy) in frames.items():
            kp = keypoints(cx, cy)
            xs, ys = kp[0::3], kp[1::3]
            vx = [x for x, v in zip(xs, kp[2::3]) if v]
            vy = [y for y, v in zip(ys, kp[2::3]) if v]
            anns.append({"bbox_head": [cx - 20, cy - 200, 40, 70], "keypoints": kp, "track_id": tid,
                         "image_id": int(f"1{vid}{f:04d}"), "bbox": [min(vx) - 10, min(vy) - 10, max(vx) - min(vx) + 20, max(vy) - min(vy) + 20],
                         "scores": [], "category_id": 1, "id": int(f"1{vid}{f:04d}{k:02d}")})
            k += 1
    anns += extra_annotations or []
    doc = {"images": images, "annotations": anns,
           "categories": [{"supercategory": "person", "id": 1, "name": "person", "keypoints": list(POSETRACK17.joints),
                           "skeleton": SKELETON}]}
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def files(tmp_path) -> tuple[Path, Path]:
    walker = {f: (300 + 4 * f, 400) for f in range(5, 55)}  # 50 labelled frames in a row
    sparse = {f: (900, 380) for f in range(0, 29, 4)}  # every 4th frame, as PoseTrack's val/test extra labels
    unlabelled = [{"keypoints": [0] * 51, "track_id": 9, "image_id": 10003420012, "category_id": 1, "id": 1}]
    a = posetrack_file(tmp_path / "000342_mpii_test.json", "000342", 60, {3: walker, 7: sparse}, extra_annotations=unlabelled)
    b = posetrack_file(tmp_path / "000001_mpii_train.json", "000001", 41, {0: {f: (500, 450) for f in range(41)}}, split="train")
    root = tmp_path / "posetrack"
    (root / "images/val/000342_mpii_test").mkdir(parents=True)
    cv2.imwrite(str(root / "images/val/000342_mpii_test/000000.jpg"), np.zeros((720, 1280, 3), np.uint8))
    return a, b, root


def test_sequences_tracks_and_keypoints(files, tmp_path):
    a, b, root = files
    home = tmp_path / "home"
    got = import_posetrack([a, b], Settings(home=home), images_root=root)
    assert [(r.video_id, r.n_frames, r.n_people, r.n_detections, r.n_tracks_kept) for r in got] == [
        ("posetrack18:000342", 60, 2, 58, 1), ("posetrack18:000001", 41, 1, 41, 1)]
    assert "1 annotations skipped" in got[0].note
    q = lambda sql: read_only_query(Settings(home=home), sql).to_pylist()  # noqa: E731
    v = q("SELECT * FROM videos WHERE video_id = 'posetrack18:000342'")[0]
    assert (v["status"], v["width"], v["height"], v["raw_path"], v["detector"], v["source"], v["max_people"]) == (
        "ok", 1280, 720, None, "posetrack2018", str(a.resolve()), 2)
    assert json.loads(v["tags"])["vid_id"] == "000342"
    assert q("SELECT width FROM videos WHERE video_id = 'posetrack18:000001'")[0]["width"] is None  # no frames given
    tracks = q("SELECT track_id, raw_track_id, start_frame, end_frame, kept, drop_reason FROM tracks WHERE video_id = 'posetrack18:000342' ORDER BY track_id")
    assert [tuple(t.values()) for t in tracks] == [(3, 3, 5, 54, True, None), (7, 7, 0, 28, False, "too_short")]
    interp = q("SELECT frame FROM track_frames WHERE video_id = 'posetrack18:000342' AND track_id = 7 AND NOT interpolated ORDER BY frame")
    assert [r["frame"] for r in interp] == list(range(0, 29, 4))
    both = q("SELECT det_idx, track_id, raw_track_id, x0, y0, x1, y1, kp_x, kp_y, kp_conf FROM detections "
             "WHERE video_id = 'posetrack18:000342' AND frame = 8 ORDER BY det_idx")
    assert [(d["det_idx"], d["track_id"], d["raw_track_id"]) for d in both] == [(0, 3, 3), (1, 7, 7)]
    d = both[0]
    kp = np.stack([d["kp_x"], d["kp_y"], d["kp_conf"]], -1)
    cx, cy = 300 + 4 * 8, 400
    expect = {"head_top": (0, -195), "nose": (0, -160), "right_shoulder": (-25, -120), "left_wrist": (40, -25),
              "right_heel": (-18, 140), "right_ankle": (-18, 140), "left_heel": (18, 140), "neck": (0, -120)}
    for name, (dx, dy) in expect.items():
        np.testing.assert_allclose(kp[HMMR25.index(name)], [cx + dx, cy + dy, 1], err_msg=name)
    for name in ("left_ear", "right_ear", "left_eye", "left_big_toe"):
        assert not kp[HMMR25.index(name)].any(), name  # head_bottom (the eye slot) has no HMMR joint
    np.testing.assert_allclose([d["x0"], d["y0"], d["x1"], d["y1"]], [cx - 50, cy - 205, cx + 50, cy + 150])

    again = import_posetrack([a], Settings(home=home), images_root=root)  # same ids: replaced, not added
    assert again[0].video_id == "posetrack18:000342"
    assert q("SELECT count(*) AS n FROM detections")[0]["n"] == 58 + 41


def test_not_posetrack_2018(tmp_path):
    (tmp_path / "pt17.json").write_text(json.dumps({"annolist": [{"image": [{"name": "x.jpg"}], "annorect": []}]}))
    with pytest.raises(PoseTrackFormatError, match="annolist"):
        read_posetrack(tmp_path / "pt17.json")
    coco = posetrack_file(tmp_path / "coco.json", "000002", 3, {1: {0: (100, 300)}})
    doc = json.loads(coco.read_text())
    doc["categories"][0]["keypoints"][1] = "left_eye"
    coco.write_text(json.dumps(doc))
    with pytest.raises(PoseTrackFormatError, match="not PoseTrack 2018"):
        read_posetrack(coco)
    doc["categories"][0]["keypoints"][1] = "head_bottom"
    doc["annotations"][0]["keypoints"] = doc["annotations"][0]["keypoints"][:45]
    coco.write_text(json.dumps(doc))
    with pytest.raises(PoseTrackFormatError, match="45 keypoint values"):
        import_posetrack([coco], Settings(home=tmp_path / "home"))
    assert not (tmp_path / "home" / "catalog.sqlite").exists()
    (tmp_path / "text.json").write_text("not json")
    with pytest.raises(PoseTrackFormatError, match="not readable JSON"):
        read_posetrack(tmp_path / "text.json")
