"""Tracking then curation of one video's detections, with column views for the warehouse."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pose_harvest.curate import CuratedTrack, CurationConfig, RawTrack, curate
from pose_harvest.detections import VideoDetections
from pose_harvest.tracking import TrackerConfig, track_video


@dataclass(frozen=True)
class TrackedVideo:
    """raw_track_ids[f]: ``(N_f,)`` raw track id of each person of frame ``f``; tracks: curated
    segments (kept and dropped)."""

    raw_track_ids: list[np.ndarray]
    tracks: list[CuratedTrack]

    def tracks_columns(self, video_id: str) -> dict[str, list]:
        """Columns of the ``tracks`` table."""
        t = self.tracks
        return {
            "video_id": [video_id] * len(t),
            "track_id": [x.track_id for x in t],
            "raw_track_id": [x.raw_track_id for x in t],
            "shot_id": [x.shot_id for x in t],
            "start_frame": [x.start_frame for x in t],
            "end_frame": [x.end_frame for x in t],
            "n_frames": [x.n_frames for x in t],
            "kept": [x.kept for x in t],
            "drop_reason": [x.drop_reason for x in t],
            "mean_visible": [float(x.n_visible.mean()) for x in t],
        }

    def frames_columns(self, video_id: str) -> dict[str, list]:
        """Columns of the ``track_frames`` table (one row per frame of every segment)."""
        cols: dict[str, list] = {k: [] for k in ("video_id", "track_id", "frame", "center_x", "center_y",
                                                 "scale", "n_visible", "interpolated")}
        for x in self.tracks:
            n = x.n_frames
            cols["video_id"] += [video_id] * n
            cols["track_id"] += [x.track_id] * n
            cols["frame"] += list(range(x.start_frame, x.end_frame + 1))
            cols["center_x"] += x.center[:, 0].tolist()
            cols["center_y"] += x.center[:, 1].tolist()
            cols["scale"] += x.scale.tolist()
            cols["n_visible"] += x.n_visible.tolist()
            cols["interpolated"] += x.interpolated.tolist()
        return cols


def track_and_curate(
    dets: VideoDetections,
    tracker: TrackerConfig | None = None,
    curation: CurationConfig | None = None,
) -> TrackedVideo:
    """Link the people of every frame into tracks (never across a shot cut), then curate them."""
    per_frame = [
        (np.array([p.bbox for p in people]).reshape(-1, 4), np.array([p.kps for p in people]).reshape(-1, 25, 3))
        for people in dets.people
    ]
    ids = track_video(per_frame, dets.shots, tracker)
    shot_of = {f: s for s, (a, b) in enumerate(dets.shots) for f in range(a, b)}
    frames: dict[int, list[int]] = {}
    kps: dict[int, list[np.ndarray]] = {}
    for f, (frame_ids, (_, k)) in enumerate(zip(ids, per_frame)):
        for i, tid in enumerate(frame_ids):
            frames.setdefault(int(tid), []).append(f)
            kps.setdefault(int(tid), []).append(k[i])
    raw = [RawTrack(tid, np.array(frames[tid]), np.stack(kps[tid]), shot_of.get(frames[tid][0], 0)) for tid in frames]
    return TrackedVideo(raw_track_ids=ids, tracks=curate(raw, curation))
