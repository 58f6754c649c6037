"""Synthetic views of fitted mocap as warehouse videos, and real tracks for measuring detector noise.

A view of a fitted sequence (:class:`warehouse.mocap.fits.StoredFit`, filmed by
:func:`pose_harvest.synthetic_views.film`) becomes a video ``mocap:<sequence_id>:view<k>`` (status
ok, no raw file, detector ``synthetic+<noise detector>``) whose detections go through the harvest's
own curation (:func:`pose_harvest.curate.curate`: start/cut on visible counts, 40-500 frames, smoothed
boxes) and table building (:func:`warehouse.harvest_tables.video_tables`), so ``training_windows``
sees its kept tracks like any harvested ones. The 3D ground truth of every curated frame goes to
``track_frames_3d``. Tags carry the mocap split: ``{"source": "mocap", "split": ..., "subject": ...,
"sequence_id": ..., "view": k, "camera": {...}}``.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from hmmr.config import Settings
from pose_harvest.curate import RawTrack, curate
from pose_harvest.detections import VideoDetections
from pose_harvest.detector_noise import DetectorNoise, TrackSample
from pose_harvest.detectors.base import Person
from pose_harvest.keypoints import bbox_from_keypoints
from pose_harvest.synthetic_views import CameraRanges, View, film, sample_camera
from pose_harvest.tracks import TrackedVideo
from warehouse import harvest_tables, schemas
from warehouse.catalog import read_only_query
from warehouse.lake import Lake
from warehouse.mocap.fits import StoredFit
from warehouse.torch_dataset import whole_track
from warehouse.windows import VISIBLE_CONF

SOURCE_PREFIX = "mocap:"


def view_id(sequence_id: str, view: int) -> str:
    return f"{SOURCE_PREFIX}{sequence_id}:view{view}"


def view_rng(seed: int, sequence_id: str, view: int) -> np.random.Generator:
    """The random numbers of one view: the same for a (seed, sequence, view) on every machine."""
    return np.random.default_rng([seed, zlib.crc32(sequence_id.encode()), view])


def film_fit(fit: StoredFit, view: int, noise: DetectorNoise, *, seed: int = 0, ranges: CameraRanges = CameraRanges()) -> View:
    """View number ``view`` of ``fit``: its camera and noise drawn from :func:`view_rng`."""
    rng = view_rng(seed, fit.sequence_id, view)
    camera = sample_camera(fit.joints[:, 0], rng, ranges)
    return film(camera, fit.keypoints, fit.joints, fit.pose, fit.trans, fps=fit.fps, noise=noise, rng=rng)


def view_rows(fit: StoredFit, view: int, filmed: View, noise: DetectorNoise, run_id: str) -> tuple[dict, dict[str, pa.Table]]:
    """The ``videos`` row and the other per-video tables (``track_frames_3d`` included) of one view."""
    vid = view_id(fit.sequence_id, view)
    n = len(filmed.kps)
    people = []
    for f in range(n):
        if not filmed.has_detection[f]:
            people.append([])
            continue
        kps = filmed.kps[f]
        vis = kps[:, 2] >= VISIBLE_CONF
        people.append([Person(kps=kps, bbox=bbox_from_keypoints(kps).astype(np.float32), score=float(kps[vis, 2].mean()))])
    dets = VideoDetections(people=people, fps=fit.fps, shots=[(0, n)], decode_s=0.0, detect_s=0.0)
    frames = np.flatnonzero(filmed.has_detection)
    raw = [RawTrack(0, frames, filmed.kps[frames])] if len(frames) else []
    tracked = TrackedVideo(raw_track_ids=[np.zeros(len(p), np.int64) for p in people], tracks=curate(raw))
    tags = {"source": "mocap", "split": fit.split, "subject": fit.subject, "sequence_id": fit.sequence_id, "view": view,
            "camera": filmed.camera.as_dict()}
    row = harvest_tables.base_video_row(video_id=vid, source=vid, url=None, tags=tags, run_id=run_id,
                                        detector=f"synthetic+{noise.detector}")
    row.update(extractor="mocap", status="ok", width=filmed.camera.width, height=filmed.camera.height, fps=fit.fps,
               duration_s=n / fit.fps, **harvest_tables.summary_columns(dets, tracked))
    tables = harvest_tables.video_tables(vid, dets, tracked)
    tables["track_frames_3d"] = _frames_3d(vid, fit, filmed, tracked)
    return row, tables


def _frames_3d(vid: str, fit: StoredFit, filmed: View, tracked: TrackedVideo) -> pa.Table:
    idx = np.concatenate([np.arange(t.start_frame, t.end_frame + 1) for t in tracked.tracks]) if tracked.tracks else np.zeros(0, int)
    tid = np.concatenate([np.full(t.n_frames, t.track_id) for t in tracked.tracks]) if tracked.tracks else np.zeros(0, int)
    m = len(idx)
    return schemas.to_arrow("track_frames_3d", {
        "video_id": [vid] * m, "track_id": tid.astype(np.int32), "frame": idx.astype(np.int32),
        "joints_3d": filmed.joints_3d[idx].reshape(m, 42), "pose": filmed.pose[idx], "shape": np.repeat(fit.betas[None], m, 0),
        "trans": filmed.trans[idx], "sequence_id": [fit.sequence_id] * m, "mocap_frame": fit.frames[idx].astype(np.int32),
    })


@dataclass(frozen=True)
class StoredView:
    video_id: str
    split: str | None
    n_frames: int
    n_tracks_kept: int
    kept_frames: int
    detected_fraction: float


def store_views(settings: Settings, fits: list[StoredFit], noise: DetectorNoise, *, views: int = 4, seed: int = 0,
                ranges: CameraRanges = CameraRanges(), progress: Callable[[StoredView], None] | None = None) -> list[StoredView]:
    """Film every fit ``views`` times and write each view (one transaction per view; a view written
    again with the same seed is replaced by the same rows)."""
    run_id = f"mocap-views-{uuid.uuid4().hex[:8]}"
    out = []
    settings.ensure_dirs()
    with Lake(settings=settings) as lake:
        for fit in fits:
            for k in range(views):
                filmed = film_fit(fit, k, noise, seed=seed, ranges=ranges)
                row, tables = view_rows(fit, k, filmed, noise, run_id)
                lake.write_video(row, tables)
                kept = [t for t in tables["tracks"].to_pylist() if t["kept"]]
                stored = StoredView(row["video_id"], fit.split, len(filmed.kps), len(kept), sum(t["n_frames"] for t in kept),
                                    float(filmed.has_detection.mean()))
                out.append(stored)
                if progress:
                    progress(stored)
    return out


def harvested_tracks(settings: Settings, query: str = "SELECT video_id, track_id FROM curated_tracks", *,
                     synthetic: bool = False) -> list[TrackSample]:
    """The kept tracks ``query`` selects (``video_id, track_id``), as :class:`TrackSample` for
    :func:`pose_harvest.detector_noise.measure_noise`. The person's height
    is each detected frame's box height (interpolated over frames without a detection). ``query`` may
    select synthetic views too: they are left out unless ``synthetic``."""
    rows = read_only_query(settings, f"SELECT q.video_id, q.track_id, t.n_frames, v.fps, v.width, v.height FROM ({query}) q "
                                     "JOIN tracks t USING (video_id, track_id) JOIN videos v USING (video_id) "
                                     f"WHERE t.kept AND (v.video_id LIKE '{SOURCE_PREFIX}%') = {synthetic} ORDER BY 1, 2").to_pylist()
    out = []
    for r in rows:
        item = whole_track(settings, r["video_id"], r["track_id"], r["n_frames"], coords="video")
        has = item["has_detection"].numpy()
        boxes = item["boxes"].numpy()
        height = boxes[:, 3] - boxes[:, 1]
        idx = np.arange(len(has))
        height = np.interp(idx, idx[has], height[has]) if has.any() else np.ones(len(has))
        out.append(TrackSample(item["kps"].numpy(), has, height, r["fps"], (r["width"], r["height"])))
    return out
