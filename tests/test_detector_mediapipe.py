"""The embedded multi-person BlazePose detector on frames of the real sample videos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pose_harvest.detectors import get_detector
from pose_harvest.detectors.mediapipe import MediaPipeConfig, MediaPipeDetector, _anchors
from pose_harvest.keypoints import BODY25B, HMMR25, convert
from pose_harvest.video import FrameStream, probe


OPENPOSE = Path(__file__).parent / "data" / "openpose_pose2sim_cam01_body25b"


def _frames(path, upto: int) -> list[np.ndarray]:
    info = probe(path)
    out = []
    for i, f in FrameStream(path, info.width, info.height):
        out.append(f.copy())
        if i + 1 >= upto:
            break
    return out


@pytest.fixture(scope="module")
def detector() -> MediaPipeDetector:
    return MediaPipeDetector()


def test_anchor_layout():
    a = _anchors()
    assert a.shape == (2254, 2) and a.min() > 0 and a.max() < 1


@pytest.mark.parametrize("name, people", [("pose2sim_single_cam01", 2), ("pose2sim_multi_cam01", 3)])
def test_people_counted_on_real_frames(detector, samples, name, people):
    frames = _frames(samples / f"{name}.mp4", 12)
    detector.reset()
    counts = [len(detector.detect(f)) for f in frames]
    assert counts.count(people) >= 11, counts
    h, w = frames[-1].shape[:2]
    for person in detector.detect(frames[-1]):
        assert person.kps.shape == (25, 3) and person.kps.dtype == np.float32
        vis = person.kps[:, 2] >= 0.5
        assert vis.sum() >= 15
        assert (person.kps[vis, 0] >= -5).all() and (person.kps[vis, 0] <= w + 5).all()
        assert (person.kps[vis, 1] >= -5).all() and (person.kps[vis, 1] <= h + 5).all()
        assert person.kps[HMMR25.index("head_top"), 2] == 0  # BlazePose has no head top
        x0, y0, x1, y1 = person.bbox
        assert 0 <= x0 < x1 <= w + 5 and 0 <= y0 < y1 <= h + 5 and 0 < person.score <= 1


def test_both_people_kept_through_the_crossing(detector, samples):
    """In pose2sim_multi_cam03 the subject passes in front of the CG woman (frames ~75-99); the
    landmark model then fits her torso in his region, and without the occlusion refit he is lost
    for 20 frames. Both must be found in every frame, as two different skeletons."""
    path = samples / "pose2sim_multi_cam03.mp4"
    info = probe(path)
    detector.reset()
    counts, crossing = [], []
    for i, frame in FrameStream(path, info.width, info.height):
        people = detector.detect(frame)
        counts.append(len(people))
        if i >= 80 and len(people) == 2:
            crossing.append(people)
    assert counts.count(2) >= 95, counts
    for a, b in crossing:  # two skeletons, not one fitted twice: their 14 body joints lie apart
        height = max(a.bbox[3] - a.bbox[1], b.bbox[3] - b.bbox[1])
        assert np.linalg.norm(a.kps[:14, :2] - b.kps[:14, :2], axis=1).mean() > 0.15 * height


def test_agrees_with_real_openpose_output(detector, samples):
    """Frame 0 of pose2sim_single_cam01 against the real OpenPose BODY_25B output for it: the
    body joints of the subject lie within 5 % of his height of OpenPose's."""
    raw = json.loads((OPENPOSE / "cam01.0000.json").read_text())["people"][0]["pose_keypoints_2d"]
    ref = convert(np.array(raw, np.float32).reshape(25, 3), BODY25B, HMMR25)
    detector.reset()
    people = detector.detect(_frames(samples / "pose2sim_single_cam01.mp4", 1)[0])
    ours = min(people, key=lambda p: np.abs(p.kps[:14, :2] - ref[:14, :2]).sum())
    joints = [HMMR25.index(n) for n in ("right_shoulder", "left_shoulder", "right_hip", "left_hip", "right_knee",
                                        "left_knee", "right_ankle", "left_ankle", "right_elbow", "left_elbow")]
    height = np.ptp(ref[ref[:, 2] > 0.1, 1])
    err = np.linalg.norm(ours.kps[joints, :2] - ref[joints, :2], axis=1) / height
    assert np.median(err) < 0.05 and err.max() < 0.12, err.round(3)


def test_blank_frame_has_nobody(detector):
    detector.reset()
    assert detector.detect(np.zeros((720, 1280, 3), np.uint8)) == []


def test_reset_forgets_carried_regions(samples):
    det = MediaPipeDetector(MediaPipeConfig(detect_every=1000))
    frame = _frames(samples / "pose2sim_single_cam01.mp4", 1)[0]
    assert len(det.detect(frame)) == 2 and len(det._rois) == 2
    det.reset()
    assert det._rois == []


def test_registry():
    assert get_detector("mediapipe") is get_detector("mediapipe")
    with pytest.raises(ValueError, match="unknown detector"):
        get_detector("nope")
