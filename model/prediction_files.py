"""The files ``hmmr predict`` writes, and how to read them back (format version 1).

A video's folder (default ``HMMR_HOME/predictions/<video_id with ':' as '_'>/``) holds

``predictions.parquet`` — one row per (track_id, frame) of every kept track, sorted by them:

| column | type | unit / meaning |
|---|---|---|
| video_id | string | the warehouse's video id (``videos.video_id``) |
| track_id | int32 | the warehouse's curated track id (``tracks.track_id``) |
| frame | int32 | frame index of the decoded video (as in ``detections.frame``) |
| time_s | float64 | frame / fps, seconds |
| has_detection | bool | False where the curation interpolated the person (no detection that frame) |
| pose | float32[72] | axis-angle, radians: global rotation then the 23 SMPL joints, SMPL order |
| shape | float32[10] | body shape coefficients (betas) |
| cam_crop | float32[3] | weak-perspective camera ``s, tx, ty`` of the 224 crop normalised to [-1, 1]: ``x = s (X + t)`` |
| cam_image | float32[3] | the same camera in the original image: ``s_px`` (pixels per metre), ``tx_px, ty_px`` (pixels): ``u = s_px X + tx_px``, ``v = s_px Y + ty_px`` |
| transl | float32[3] | metres: the body's translation for a pinhole camera of focal length ``focal_px`` (metadata) with the principal point at the image centre that sees it as ``cam_image`` does: ``tz = focal_px / s_px`` |
| joints3d | float32[24][3] | the 24 SMPL joints, metres, body frame (x right, y down, z away from the camera) |
| kps3d | float32[25][3] | the HMMR-25 keypoints (``pose_harvest.keypoints.HMMR25``), metres, body frame |
| kps2d_image | float32[25][2] | ``kps3d`` projected with ``cam_image``, pixels of the original image |

Its schema metadata ``hmmr`` is a JSON object: ``format_version``, ``video_id``, ``source``, ``fps``,
``width``, ``height`` (pixels), ``focal_px``, ``checkpoint``, ``checkpoint_step``, ``body_model``
(``open`` or ``smpl``), ``body_source``, ``n_vertices``, ``tracks`` (ids), ``created_at``.

``predictions.npz`` — the same numbers as arrays, plus the meshes: ``meta`` (that JSON, a 0-d string),
``faces`` ``(F, 3)`` int32, ``track_ids`` ``(K,)``, and per track ``track_<id>/<name>`` for every
column above (``frames`` ``(N,)``, ``has_detection`` ``(N,)``, ``pose`` ``(N, 72)``, ``shape``
``(N, 10)``, ``cam_crop``/``cam_image``/``transl`` ``(N, 3)``, ``joints3d`` ``(N, 24, 3)``, ``kps3d``
``(N, 25, 3)``, ``kps2d_image`` ``(N, 25, 2)``) and ``vertices`` ``(N, V, 3)`` float32 metres in the body
frame (image pixels: ``s_px * x + tx_px``, ``s_px * y + ty_px``). The vertices live only here: at
13,718 vertices (the open model) they are 165 kB a frame, which would make the Parquet rows 40 times
bigger. :func:`read_predictions` gives everything back as :class:`~model.predict.TrackMotion` objects.

``overlay.mp4`` — the video with each track's mesh drawn in its colour
(``pose_harvest.render.track_colour``) and its id: same frames and frame rate as the decoded video.

A single image gives ``<image stem>_past_present_future.png`` (one row of three panels per person:
t - 5, t, t + 5 frames) and ``image_predictions.npz``: ``meta``, ``faces``, ``times`` ``(3,)``, ``boxes``
``(P, 4)`` pixels, ``pose`` ``(3, P, 72)``, ``shape`` ``(P, 10)``, ``cam_crop`` ``(P, 3)``, ``cam_image``
``(P, 3)``, ``vertices`` ``(3, P, V, 3)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from model.predict import Hallucinated, TrackMotion

FORMAT_VERSION = 1
PARQUET = "predictions.parquet"
NPZ = "predictions.npz"
OVERLAY = "overlay.mp4"
IMAGE_NPZ = "image_predictions.npz"
#: TrackMotion fields that are Parquet list columns (all but frames, has_detection and vertices)
LIST_COLUMNS = ("pose", "shape", "cam_crop", "cam_image", "transl", "joints3d", "kps3d", "kps2d_image")


def folder_name(video_id: str) -> str:
    """A video id as a folder name: ``url:3f2a...`` -> ``url_3f2a...``."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in video_id)


def _fixed_list(values: np.ndarray) -> pa.Array:
    """``(N, a[, b])`` float32 -> a Parquet fixed-size list column (nested for 3-D arrays)."""
    values = np.ascontiguousarray(values, np.float32)
    arr: pa.Array = pa.array(values.reshape(-1))
    for size in reversed(values.shape[1:]):
        arr = pa.FixedSizeListArray.from_arrays(arr, size)
    return arr


def predictions_table(video_id: str, fps: float, tracks: dict[int, TrackMotion], meta: dict) -> pa.Table:
    """The ``predictions.parquet`` table of ``tracks`` (see the module docstring)."""
    ids = sorted(tracks)
    if not ids:
        raise ValueError("no tracks to write")
    cat = {name: np.concatenate([getattr(tracks[t], name) for t in ids]) for name in ("frames", "has_detection", *LIST_COLUMNS)}
    n = len(cat["frames"])
    columns = {
        "video_id": pa.array([video_id] * n, pa.string()),
        "track_id": pa.array(np.concatenate([np.full(len(tracks[t].frames), t, np.int32) for t in ids])),
        "frame": pa.array(cat["frames"].astype(np.int32)),
        "time_s": pa.array(cat["frames"] / fps),
        "has_detection": pa.array(cat["has_detection"]),
    } | {name: _fixed_list(cat[name]) for name in LIST_COLUMNS}
    table = pa.table(columns)
    return table.replace_schema_metadata({"hmmr": json.dumps(meta)})


def prediction_meta(*, video_id: str, source: str, fps: float, width: int, height: int, focal_px: float,
                    checkpoint: Path, checkpoint_step: int, body_model: str, body_source: str, n_vertices: int,
                    tracks: list[int]) -> dict:
    """The metadata object of both files."""
    return {"format_version": FORMAT_VERSION, "video_id": video_id, "source": source, "fps": fps, "width": width,
            "height": height, "focal_px": focal_px, "checkpoint": str(checkpoint), "checkpoint_step": checkpoint_step,
            "body_model": body_model, "body_source": body_source, "n_vertices": n_vertices, "tracks": tracks,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def write_predictions(folder: Path, tracks: dict[int, TrackMotion], faces: np.ndarray, meta: dict) -> tuple[Path, Path]:
    """Write ``predictions.parquet`` and ``predictions.npz`` into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    table = predictions_table(meta["video_id"], meta["fps"], tracks, meta)
    parquet, npz = folder / PARQUET, folder / NPZ
    pq.write_table(table, parquet, compression="zstd")
    arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(meta)), "faces": np.asarray(faces, np.int32),
                                     "track_ids": np.array(sorted(tracks), np.int64)}
    for tid, motion in tracks.items():
        arrays |= {f"track_{tid}/{f.name}": getattr(motion, f.name) for f in fields(TrackMotion)}
    tmp = npz.with_name(npz.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(npz)
    return parquet, npz


@dataclass(frozen=True)
class Predictions:
    """What :func:`read_predictions` gives: the metadata, the mesh triangles and every track."""

    meta: dict
    faces: np.ndarray
    tracks: dict[int, TrackMotion]


def read_predictions(path: str | Path) -> Predictions:
    """Read ``predictions.npz`` (or the folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / NPZ
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: prediction format {meta.get('format_version')}, this hmmr reads {FORMAT_VERSION}")
        tracks = {int(t): TrackMotion(**{f.name: npz[f"track_{int(t)}/{f.name}"] for f in fields(TrackMotion)})
                  for t in npz["track_ids"]}
        return Predictions(meta=meta, faces=npz["faces"], tracks=tracks)


def write_image_predictions(folder: Path, people: Hallucinated, boxes: np.ndarray, cam_image: np.ndarray,
                            faces: np.ndarray, meta: dict) -> Path:
    """Write ``image_predictions.npz`` (see the module docstring) into ``folder``; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / IMAGE_NPZ
    np.savez(path, meta=np.array(json.dumps(meta)), faces=np.asarray(faces, np.int32), times=np.array(people.times),
             boxes=np.asarray(boxes, np.float32), pose=people.pose, shape=people.shape, cam_crop=people.cam_crop,
             cam_image=np.asarray(cam_image, np.float32), vertices=people.vertices)
    return path
