"""Annotated people (ground-truth tracks of a public dataset) into the harvest tables.

Datasets such as PoseTrack and Penn Action already say who is who: their track ids are stored as they
are (``tracks.track_id`` = ``tracks.raw_track_id`` = ``detections.track_id`` = ``detections.raw_track_id``
= the dataset's id),
one ``tracks`` row per annotated person, never cut or renumbered. The HMMR box (centre, 150 px scale,
interpolated over unannotated frames, smoothed) and the keep rules (40+ frames, not face-only) are the
harvest's own (:func:`pose_harvest.curate.curate_track`), with the visible-count start/cut rule and
the 500-frame split turned off, so ``kept`` means what it means for harvested tracks.

Such datasets often ship frames as image folders, not a video: the ``videos`` row then has no
``raw_path`` (status ``ok``, ``source`` = the annotation file) and crops cannot be cut from it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from pose_harvest.curate import CurationConfig, RawTrack, curate_track
from pose_harvest.keypoints import bbox_from_keypoints
from pose_harvest.tracks import TrackedVideo
from warehouse import harvest_tables, schemas
from warehouse.lake import Lake

GROUND_TRUTH_CURATION = CurationConfig(start_above=-1, cut_at_or_below=-1, max_frames=np.iinfo(np.int32).max)
"""One segment per annotated person: no visible-count cut, no 500-frame split; the other rules hold."""


@dataclass(frozen=True)
class AnnotatedPerson:
    """One dataset track: ``frames (N,)`` strictly increasing frame indices, ``kps (N, 25, 3)``
    HMMR-25 pixels + confidence (the dataset's visibility), ``boxes (N, 4)`` x0, y0, x1, y1 pixels
    (NaN rows: taken from the visible keypoints)."""

    track_id: int
    frames: np.ndarray
    kps: np.ndarray
    boxes: np.ndarray


@dataclass(frozen=True)
class AnnotatedVideo:
    """One annotated sequence. ``n_frames`` counts every frame of the sequence, annotated or not;
    width/height in pixels and fps may be unknown (None)."""

    video_id: str
    source: str
    detector: str  # which dataset, e.g. 'posetrack2018'
    extractor: str
    tags: dict
    n_frames: int
    people: list[AnnotatedPerson]
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    error: str | None = None  # a note on what the importer had to skip
    extra: dict = field(default_factory=dict)


def video_rows(video: AnnotatedVideo, run_id: str) -> tuple[dict, dict[str, pa.Table]]:
    """The ``videos`` row and the other tables of one annotated video."""
    curated = [curate_track(RawTrack(p.track_id, p.frames, p.kps, 0), p.track_id, GROUND_TRUTH_CURATION)[0]
               for p in sorted(video.people, key=lambda p: p.track_id) if len(p.frames)]
    tracked = TrackedVideo(raw_track_ids=[], tracks=curated)
    detections = _detections(video)
    per_frame = np.bincount(detections.column("frame").to_numpy(), minlength=1) if detections.num_rows else np.zeros(1, int)
    row = harvest_tables.base_video_row(video_id=video.video_id, source=video.source, url=None, tags=video.tags,
                                        run_id=run_id, detector=video.detector)
    row.update(extractor=video.extractor, width=video.width, height=video.height, fps=video.fps, n_frames=video.n_frames,
               duration_s=video.n_frames / video.fps if video.fps else None, n_shots=1,
               n_detections=detections.num_rows, max_people=int(per_frame.max()), n_tracks=len(curated),
               n_tracks_kept=sum(t.kept for t in curated), error=video.error,
               status="ok" if detections.num_rows else "no_people")
    shots = schemas.to_arrow("shots", {"video_id": [video.video_id], "shot_id": [0], "start_frame": [0],
                                       "end_frame": [video.n_frames],
                                       "start_s": [0.0], "end_s": [video.n_frames / video.fps if video.fps else None]})
    return row, {
        "shots": shots,
        "detections": detections,
        "tracks": schemas.to_arrow("tracks", tracked.tracks_columns(video.video_id)),
        "track_frames": schemas.to_arrow("track_frames", tracked.frames_columns(video.video_id)),
    }


def _detections(video: AnnotatedVideo) -> pa.Table:
    """One row per annotated person per frame, ordered by (frame, track id); ``det_idx`` counts the
    people of a frame in that order."""
    people = sorted(video.people, key=lambda p: p.track_id)
    if people:
        frames = np.concatenate([p.frames for p in people]).astype(np.int64)
        tids = np.concatenate([np.full(len(p.frames), p.track_id) for p in people])
        kps = np.concatenate([p.kps for p in people]).astype(np.float32).reshape(-1, 25, 3)
        boxes = np.concatenate([p.boxes for p in people]).astype(np.float32).reshape(-1, 4)
    else:
        frames, tids, kps, boxes = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 25, 3), np.float32), np.zeros((0, 4), np.float32)
    order = np.lexsort((tids, frames))
    frames, tids, kps, boxes = frames[order], tids[order], kps[order], boxes[order]
    missing = np.isnan(boxes).any(1)
    boxes[missing] = bbox_from_keypoints(kps[missing])
    first = np.r_[True, frames[1:] != frames[:-1]] if len(frames) else np.zeros(0, bool)
    starts = np.maximum.accumulate(np.where(first, np.arange(len(frames)), 0)) if len(frames) else frames
    n = len(frames)
    return schemas.to_arrow("detections", {
        "video_id": [video.video_id] * n, "frame": frames.tolist(),
        "time_s": (frames / video.fps).tolist() if video.fps else [None] * n,
        "shot_id": [0] * n, "det_idx": (np.arange(n) - starts).tolist(), "raw_track_id": tids.tolist(),
        "track_id": tids.tolist(),
        "x0": boxes[:, 0], "y0": boxes[:, 1], "x1": boxes[:, 2], "y1": boxes[:, 3],
        "score": np.ones(n, np.float32),
        "kp_x": list(kps[:, :, 0]), "kp_y": list(kps[:, :, 1]), "kp_conf": list(kps[:, :, 2]),
    })


@dataclass(frozen=True)
class ImportedVideo:
    video_id: str
    n_frames: int
    n_people: int
    n_detections: int
    n_tracks_kept: int
    note: str | None


def store(videos: list[AnnotatedVideo], lake: Lake) -> list[ImportedVideo]:
    """Write each video in its own transaction (importing again replaces its rows with the same ones)."""
    run_id = f"import-{uuid.uuid4().hex[:8]}"
    out = []
    for v in videos:
        row, tables = video_rows(v, run_id)
        lake.write_video(row, tables)
        out.append(ImportedVideo(v.video_id, v.n_frames, len(v.people), row["n_detections"], row["n_tracks_kept"], v.error))
    return out
