"""Turn one harvested video (pose_harvest results) into the rows of the warehouse tables.

Only column building lives here; schemas are in :mod:`warehouse.schemas`, writing in
:mod:`warehouse.lake`.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa

from pose_harvest.detections import VideoDetections
from pose_harvest.tracks import TrackedVideo
from pose_harvest.video import ProbeResult
from warehouse import schemas


def base_video_row(*, video_id: str, source: str, url: str | None, tags: dict, run_id: str, detector: str) -> dict:
    """A ``videos`` row with what is known before anything is downloaded (status still unset)."""
    row = {name: None for name in schemas.column_names("videos")}
    row.update(
        video_id=video_id,
        source=source,
        url=url,
        tags=json.dumps(tags, sort_keys=True),
        detector=detector,
        run_id=run_id,
        harvested_at=datetime.now(timezone.utc).replace(tzinfo=None),
        schema_version=schemas.SCHEMA_VERSION,
    )
    return row


def probe_columns(info: ProbeResult) -> dict:
    return {"codec": info.codec, "width": info.width, "height": info.height, "fps": info.fps,
            "n_frames": info.n_frames, "duration_s": info.duration_s}


def summary_columns(dets: VideoDetections, tracked: TrackedVideo) -> dict:
    """Counts for the ``videos`` row. ``n_frames`` is the number of frames actually decoded."""
    counts = [len(p) for p in dets.people]
    return {
        "n_frames": dets.n_frames,
        "n_shots": len(dets.shots),
        "n_detections": int(sum(counts)),
        "max_people": int(max(counts, default=0)),
        "n_tracks": len(tracked.tracks),
        "n_tracks_kept": int(sum(t.kept for t in tracked.tracks)),
    }


def video_tables(video_id: str, dets: VideoDetections, tracked: TrackedVideo) -> dict[str, pa.Table]:
    """``shots``, ``detections``, ``tracks`` and ``track_frames`` of one video as Arrow tables."""
    return {
        "shots": _shots(video_id, dets),
        "detections": _detections(video_id, dets, tracked),
        "tracks": schemas.to_arrow("tracks", tracked.tracks_columns(video_id)),
        "track_frames": schemas.to_arrow("track_frames", tracked.frames_columns(video_id)),
    }


def _shots(video_id: str, dets: VideoDetections) -> pa.Table:
    starts = [a for a, _ in dets.shots]
    ends = [b for _, b in dets.shots]
    return schemas.to_arrow("shots", {
        "video_id": [video_id] * len(starts),
        "shot_id": list(range(len(starts))),
        "start_frame": starts,
        "end_frame": ends,
        "start_s": [a / dets.fps for a in starts],
        "end_s": [b / dets.fps for b in ends],
    })


def _detections(video_id: str, dets: VideoDetections, tracked: TrackedVideo) -> pa.Table:
    frame, det_idx, shot, raw_ids, boxes, scores, kps = [], [], [], [], [], [], []
    shot_of = np.zeros(dets.n_frames, dtype=np.int64)
    for sid, (a, b) in enumerate(dets.shots):
        shot_of[a:b] = sid
    for f, people in enumerate(dets.people):
        ids = tracked.raw_track_ids[f]
        for i, person in enumerate(people):
            frame.append(f)
            det_idx.append(i)
            shot.append(int(shot_of[f]))
            raw_ids.append(None if ids[i] < 0 else int(ids[i]))
            boxes.append(person.bbox)
            scores.append(person.score)
            kps.append(person.kps)
    n = len(frame)
    frame_a, raw_a = np.asarray(frame, dtype=np.int64), np.array([-1 if r is None else r for r in raw_ids], dtype=np.int64)
    track_id = np.full(n, -1, dtype=np.int64)
    for t in tracked.tracks:  # segments of one raw track never overlap in frames
        track_id[(raw_a == t.raw_track_id) & (frame_a >= t.start_frame) & (frame_a <= t.end_frame)] = t.track_id
    boxes_a = np.asarray(boxes, dtype=np.float32).reshape(n, 4)
    kps_a = np.asarray(kps, dtype=np.float32).reshape(n, 25, 3)
    return schemas.to_arrow("detections", {
        "video_id": [video_id] * n,
        "frame": frame,
        "time_s": [f / dets.fps for f in frame],
        "shot_id": shot,
        "det_idx": det_idx,
        "raw_track_id": raw_ids,
        "x0": boxes_a[:, 0], "y0": boxes_a[:, 1], "x1": boxes_a[:, 2], "y1": boxes_a[:, 3],
        "score": np.asarray(scores, dtype=np.float32),
        "kp_x": list(kps_a[:, :, 0]), "kp_y": list(kps_a[:, :, 1]), "kp_conf": list(kps_a[:, :, 2]),
        "track_id": [None if t < 0 else int(t) for t in track_id],
    })
