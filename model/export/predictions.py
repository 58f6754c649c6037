"""One track's SMPL parameters from the files ``hmmr predict`` writes (:mod:`model.prediction_files`).

The track's shape is the mean of its per-frame shapes (HMMR predicts one per frame; the paper's
constant-shape loss keeps them close) since an exported body keeps one skeleton for the whole motion.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from model import prediction_files as files


class PredictionsError(ValueError):
    """The predictions cannot be read or lack the track; the message names the file and the fix."""


@dataclass(frozen=True)
class TrackParameters:
    """A predicted track: ``pose`` ``(N, 72)`` axis-angle radians, ``shape`` ``(10,)`` (the frames'
    mean), ``transl`` ``(N, 3)`` metres, all in HMMR's camera frame (y down); ``frames`` ``(N,)`` video
    frame indices; ``fps``; ``meta`` (the files' metadata: body model, video, checkpoint)."""

    pose: np.ndarray
    shape: np.ndarray
    transl: np.ndarray
    frames: np.ndarray
    fps: float
    meta: dict


def _parquet_track(path: Path, track_id: int) -> tuple[dict, dict[str, np.ndarray], list[int]]:
    table = pq.read_table(path, columns=["track_id", "frame", "pose", "shape", "transl"])
    meta = json.loads((table.schema.metadata or {}).get(b"hmmr", b"{}"))
    ids = sorted(set(table["track_id"].to_pylist()))
    rows = table.filter(pc.equal(table["track_id"], track_id)).sort_by("frame")
    arrays = {"frames": rows["frame"].to_numpy()} | {
        name: np.asarray(rows[name].combine_chunks().flatten().to_numpy(), np.float64).reshape(len(rows), -1)
        for name in ("pose", "shape", "transl")}
    return meta, arrays, ids


def track_parameters(path: Path | str, track_id: int) -> TrackParameters:
    """Track ``track_id`` of the predictions at ``path``: an ``hmmr predict`` output folder, its
    ``predictions.npz`` or its ``predictions.parquet``. Raises :class:`PredictionsError`."""
    path = Path(path)
    hint = "run hmmr predict VIDEO --checkpoint CKPT first; it writes HOME/predictions/<video>/"
    if path.is_dir() and not (path / files.NPZ).is_file():
        path = path / files.PARQUET
    if not path.exists():
        raise PredictionsError(f"{path}: no predictions there ({hint})")
    try:
        if path.suffix == ".parquet":
            meta, arrays, ids = _parquet_track(path, int(track_id))
        else:
            pred = files.read_predictions(path)
            meta, ids = pred.meta, sorted(pred.tracks)
            track = pred.tracks.get(int(track_id))
            arrays = {} if track is None else {"frames": track.frames, "pose": track.pose, "shape": track.shape, "transl": track.transl}
    except (OSError, KeyError, ValueError) as exc:
        raise PredictionsError(f"{path}: not readable as hmmr predictions ({exc})") from exc
    if not arrays or len(arrays["frames"]) == 0:
        raise PredictionsError(f"{path}: no track {track_id} (its tracks: {', '.join(map(str, ids)) or 'none'})")
    frames = np.asarray(arrays["frames"], np.int64)
    if np.any(np.diff(frames) != 1):
        raise PredictionsError(f"{path}: track {track_id} skips frames; an export needs consecutive frames")
    return TrackParameters(pose=np.asarray(arrays["pose"], np.float64), shape=np.asarray(arrays["shape"], np.float64).mean(0),
                           transl=np.asarray(arrays["transl"], np.float64), frames=frames, fps=float(meta["fps"]), meta=meta)


def body_model_for(meta: dict, settings, smpl_path: Path | str | None = None):
    """The body model the predictions were made with (``meta["body_model"]``: the open model, or the
    SMPL file ``smpl_path`` / ``meta["body_source"]``), checked by its vertex count."""
    from model.body import load_body_model, resolve_smpl_path

    kind = meta.get("body_model")
    if kind == "open" and resolve_smpl_path(None) is not None:
        raise PredictionsError("these predictions were made with the open body model: unset HMMR_SMPL_PATH to export them")
    if kind == "smpl":
        smpl_path = smpl_path or meta.get("body_source")
    body = load_body_model(settings, smpl_path=smpl_path if kind == "smpl" else None)
    if meta.get("n_vertices") not in (None, body.n_vertices):
        raise PredictionsError(f"the predictions' body has {meta['n_vertices']} vertices, the loaded {body.kind} model "
                               f"{body.n_vertices}: pass the SMPL file they were made with (--smpl)")
    return body
