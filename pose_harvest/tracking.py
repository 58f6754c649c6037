"""Link per-frame people into tracks: Hungarian assignment with a gate.

Cost between a live track and a detection = ``w_iou * (1 - IoU) + w_kp * keypoint distance``,
where the keypoint distance is the mean pixel distance over keypoints visible in both, divided by
the track's box diagonal (scale-free). Without keypoints (boxes only) the cost is ``1 - IoU``.
A pair costing more than ``gate`` is never matched: the detection starts a new track instead of
stealing an identity (DetectAndTrack, which HMMR used, has no gate). A track missing for up to
``max_gap`` frames stays alive and is matched against its constant-velocity prediction. Tracks end
at shot cuts; ids are never reused within a video.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True)
class TrackerConfig:
    """gate: highest cost a match may have (cost is about 0 for the same person, 1+ for another).
    max_gap: frames a track may go unmatched and still continue.
    w_iou / w_kp: weights of box overlap and keypoint distance in the cost.
    min_conf: keypoint confidence counted as visible for the distance."""

    gate: float = 0.7
    max_gap: int = 10
    w_iou: float = 0.5
    w_kp: float = 1.0
    min_conf: float = 0.1


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of ``(N, 4)`` and ``(M, 4)`` boxes ``x0, y0, x1, y1`` -> ``(N, M)``."""
    a = a[:, None, :]
    b = b[None, :, :]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-9)


@dataclass
class _Track:
    track_id: int
    box: np.ndarray  # (4,) last matched box
    kps: np.ndarray | None  # (K, 3) last matched keypoints
    last_frame: int
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))  # box change per frame

    def predicted_box(self, frame: int) -> np.ndarray:
        return self.box + self.velocity * (frame - self.last_frame)


class Tracker:
    """Online tracker for one shot at a time. ``update`` once per frame, in frame order."""

    def __init__(self, config: TrackerConfig | None = None, *, first_id: int = 0):
        self.config = config or TrackerConfig()
        self.next_id = first_id
        self.tracks: list[_Track] = []

    def reset(self) -> None:
        """End every live track (a shot cut). Ids keep counting up."""
        self.tracks = []

    def cost_matrix(self, frame: int, boxes: np.ndarray, kps: np.ndarray | None) -> np.ndarray:
        """``(live tracks, detections)`` matching costs."""
        cfg = self.config
        pred = np.array([t.predicted_box(frame) for t in self.tracks]).reshape(-1, 4)
        cost = 1.0 - box_iou(pred, boxes)
        if kps is None:
            return cost
        cost = cfg.w_iou * cost
        for i, t in enumerate(self.tracks):
            diag = float(np.hypot(t.box[2] - t.box[0], t.box[3] - t.box[1])) or 1.0
            for j in range(len(boxes)):
                if t.kps is None:
                    cost[i, j] += cfg.w_kp
                    continue
                both = (t.kps[:, 2] >= cfg.min_conf) & (kps[j, :, 2] >= cfg.min_conf)
                if not both.any():
                    cost[i, j] += cfg.w_kp
                    continue
                shift = (pred[i, :2] + pred[i, 2:] - t.box[:2] - t.box[2:]) / 2  # predicted motion
                d = np.linalg.norm(kps[j, both, :2] - (t.kps[both, :2] + shift), axis=1).mean()
                cost[i, j] += cfg.w_kp * d / diag
        return cost

    def update(self, frame: int, boxes: np.ndarray, kps: np.ndarray | None = None) -> np.ndarray:
        """Assign track ids to this frame's detections.

        boxes: ``(N, 4)`` pixels ``x0, y0, x1, y1``; kps: ``(N, K, 3)`` pixels + confidence or None.
        Returns ``(N,)`` int64 track ids.
        """
        cfg = self.config
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        self.tracks = [t for t in self.tracks if frame - t.last_frame <= cfg.max_gap + 1]
        ids = np.full(len(boxes), -1, dtype=np.int64)
        if self.tracks and len(boxes):
            cost = self.cost_matrix(frame, boxes, kps)
            rows, cols = linear_sum_assignment(np.where(cost > cfg.gate, 1e6, cost))
            for r, c in zip(rows, cols):
                if cost[r, c] > cfg.gate:
                    continue
                t = self.tracks[r]
                gap = frame - t.last_frame
                t.velocity = 0.5 * t.velocity + 0.5 * (boxes[c] - t.box) / gap
                t.box, t.last_frame = boxes[c], frame
                t.kps = None if kps is None else np.asarray(kps[c], dtype=np.float64)
                ids[c] = t.track_id
        for c in np.flatnonzero(ids < 0):
            t = _Track(self.next_id, boxes[c], None if kps is None else np.asarray(kps[c], dtype=np.float64), frame)
            self.tracks.append(t)
            ids[c] = t.track_id
            self.next_id += 1
        return ids


def track_video(
    frames: Sequence[tuple[np.ndarray, np.ndarray | None]],
    shots: Sequence[tuple[int, int]],
    config: TrackerConfig | None = None,
) -> list[np.ndarray]:
    """Track a whole video. ``frames[i] = (boxes (N,4), kps (N,K,3) or None)`` for frame ``i``;
    ``shots`` are ``(start, end_exclusive)`` ranges (no track crosses a boundary).
    Returns per frame the ``(N,)`` track ids, unique within the video."""
    tracker = Tracker(config)
    out: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(frames)
    for start, end in shots:
        tracker.reset()
        for f in range(start, min(end, len(frames))):
            boxes, kps = frames[f]
            out[f] = tracker.update(f, boxes, kps)
    return out
