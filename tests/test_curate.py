"""HMMR track cleaning rules, on hand-built sequences and on real OpenPose output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pose_harvest.curate import CurationConfig, RawTrack, curate, curate_track
from pose_harvest.keypoints import BODY25B, HMMR25, HMMR25_BODY_BELOW_SHOULDERS, bbox_from_keypoints, convert
from pose_harvest.tracking import track_video

OPENPOSE = Path(__file__).parent / "data" / "openpose_pose2sim_cam01_body25b"


def _person(n_visible: int, height: float = 300.0, cx: float = 500.0, top: float = 100.0) -> np.ndarray:
    """(25, 3) keypoints spread vertically over ``height`` px, the first ``n_visible`` visible."""
    kps = np.zeros((25, 3), np.float32)
    kps[:, 0] = cx
    kps[:, 1] = np.linspace(top, top + height, 25)
    kps[:n_visible, 2] = 0.9
    return kps


def _track(counts: list[int], **kw) -> RawTrack:
    return RawTrack(0, np.arange(len(counts)), np.stack([_person(c, **kw) for c in counts]))


def test_kept_track_and_150px_scale():
    (t,) = curate_track(_track([25] * 60), 0)
    assert t.kept and t.drop_reason is None and (t.start_frame, t.end_frame, t.n_frames) == (0, 59, 60)
    np.testing.assert_allclose(t.scale, 150 / 300, rtol=1e-5)  # keypoint extent is 300 px tall
    np.testing.assert_allclose(t.center, [[500, 250]] * 60, rtol=1e-5)


def test_start_and_cut_thresholds_after_median_filter():
    # 50 good frames, 10 with 4 visible (cut: <= 4), 50 good: two segments.
    counts = [25] * 50 + [4] * 10 + [25] * 50
    segs = curate_track(_track(counts), 0)
    assert [(s.start_frame, s.end_frame) for s in segs] == [(0, 49), (60, 109)]
    # A 2-frame dip is removed by the k=5 median filter: one segment.
    assert len(curate_track(_track([25] * 50 + [3] * 2 + [25] * 50), 0)) == 1
    # 5 visible is between the thresholds: never starts a track.
    (only,) = curate_track(_track([5] * 60), 0)
    assert not only.kept and only.drop_reason == "few_visible"


def test_length_limits():
    (short,) = curate_track(_track([25] * 39), 0)
    assert not short.kept and short.drop_reason == "too_short"
    (ok,) = curate_track(_track([25] * 40), 0)
    assert ok.kept
    long = curate_track(_track([25] * 1030), 0)
    assert [(s.n_frames, s.kept, s.drop_reason) for s in long] == [(500, True, None), (500, True, None), (30, False, "too_short")]
    assert [s.track_id for s in long] == [0, 1, 2]


def test_face_only_tracks_are_dropped():
    face = np.zeros((60, 25, 3), np.float32)
    face_idx = [HMMR25.index(n) for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "neck", "head_top", "left_shoulder", "right_shoulder")]
    face[:, face_idx, 2] = 0.9
    face[:, :, 1] = np.linspace(0, 100, 25)
    (t,) = curate_track(RawTrack(0, np.arange(60), face), 0)
    assert not t.kept and t.drop_reason == "face_only"
    assert len(HMMR25_BODY_BELOW_SHOULDERS) == 16


def test_gap_is_interpolated_and_jitter_smoothed():
    rng = np.random.default_rng(0)
    frames = np.r_[0:30, 32:80]  # 2 frames missing (a longer gap is cut by the visible-count rule)
    kps = np.stack([_person(25, cx=500 + rng.normal(0, 8)) for _ in frames])
    (t,) = curate_track(RawTrack(3, frames, kps), 0)
    assert t.n_frames == 80 and t.interpolated.sum() == 2 and t.interpolated[30:32].all()
    assert t.raw_track_id == 3 and np.isfinite(t.center).all()
    raw_jitter = np.std(np.diff(kps[:, 0, 0]))
    assert np.std(np.diff(t.center[:, 0])) < raw_jitter / 4


def _openpose_frames() -> list[np.ndarray]:
    frames = []
    for path in sorted(OPENPOSE.glob("*.json")):
        people = json.loads(path.read_text())["people"]
        raw = np.array([p["pose_keypoints_2d"] for p in people], np.float32).reshape(-1, 25, 3)
        frames.append(convert(raw, BODY25B, HMMR25))
    return frames


def test_real_openpose_output_tracked_and_curated():
    """Real BODY_25B output of samples/pose2sim_single_cam01.mp4: subject and bystander."""
    frames = _openpose_frames()
    assert len(frames) == 100 and [len(f) for f in frames].count(2) == 99 and len(frames[37]) == 3
    per_frame = [(bbox_from_keypoints(k), k) for k in frames]
    ids = track_video(per_frame, [(0, 100)])
    # people[0] is the subject in every frame, people[1] the bystander (in frame 37 OpenPose splits
    # the subject in two: upper body people[0], legs people[1], bystander people[2]).
    bystander = {int(i[-1]) for i in ids}
    subject = {int(i[0]) for f, i in enumerate(ids) if f != 37}
    assert bystander == {1} and 1 not in subject
    assert len(subject) <= 2  # at most one break, at the split frame
    raw = {}
    for f, (tids, k) in enumerate(zip(ids, frames)):
        for tid, person in zip(tids, k):
            raw.setdefault(int(tid), ([], []))
            raw[int(tid)][0].append(f)
            raw[int(tid)][1].append(person)
    tracks = curate([RawTrack(t, np.array(fr), np.stack(kp)) for t, (fr, kp) in raw.items()])
    kept = {t.raw_track_id: t for t in tracks if t.kept}
    assert kept[1].n_frames == 100 and kept[1].start_frame == 0  # the bystander, whole clip
    assert max(kept[t].n_frames for t in subject if t in kept) >= 60
    x0, _, x1, _ = bbox_from_keypoints(frames[0][0])
    assert 250 < x0 < 300 and 540 < x1 < 600  # the subject, per the data README (x 269-568)
    longest = max((kept[t] for t in subject if t in kept), key=lambda t: t.n_frames)
    assert longest.scale.mean() == pytest.approx(150 / 800, rel=0.25)  # subject ~800 px tall
