"""Mocap sequences out of the warehouse for the body-model fit, and the fits back in.

:func:`read_motions` gives the stored joint positions of sequences (``mocap_sequences`` /
``mocap_frames``); :func:`fit_tables` turns one fit (a :class:`model.body.fit_joints.JointFit`) into
the rows of ``mocap_fits`` and ``mocap_fit_frames``, written with ``Lake.replace_rows`` keyed by
``sequence_id`` (a sequence fitted again replaces its rows); :func:`read_fits` reads fits back for
the synthetic views.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from hmmr.config import Settings
from warehouse import schemas
from warehouse.catalog import read_only_query

if TYPE_CHECKING:
    from model.body.fit_joints import JointFit


@dataclass(frozen=True)
class StoredMotion:
    """One stored sequence's joints: ``joints (F, J, 3)`` metres (world, y-up for BVH), ``frames (F,)``."""

    sequence_id: str
    source: str
    subject: str | None
    split: str | None
    fps: float
    joint_names: tuple[str, ...]
    frames: np.ndarray
    joints: np.ndarray


@dataclass(frozen=True)
class StoredFit:
    """A stored fit: ``betas (10,)``; per frame ``pose (F, 72)``, ``trans (F, 3)``, ``joints (F, 24, 3)``
    and ``keypoints (F, 25, 3)`` metres in the mocap's world."""

    sequence_id: str
    subject: str | None
    split: str | None
    fps: float
    body_model: str
    mean_error_mm: float
    betas: np.ndarray
    frames: np.ndarray
    pose: np.ndarray
    trans: np.ndarray
    joints: np.ndarray
    keypoints: np.ndarray


def _ids_filter(ids: list[str] | None) -> tuple[str, dict]:
    if not ids:
        return "", {}
    return "WHERE s.sequence_id IN (SELECT unnest($ids))", {"ids": list(ids)}


def _lists(table: pa.Table, column: str, width: int) -> np.ndarray:
    return table.column(column).combine_chunks().flatten().to_numpy().reshape(-1, width)


def _groups(table: pa.Table) -> dict[str, slice]:
    """Row range of each sequence_id in ``table`` (sorted by sequence_id)."""
    ids = table.column("sequence_id").to_pylist()
    out: dict[str, slice] = {}
    for i, sid in enumerate(ids):
        out[sid] = slice(out[sid].start, i + 1) if sid in out else slice(i, i + 1)
    return out


def read_motions(settings: Settings, ids: list[str] | None = None) -> list[StoredMotion]:
    """The stored sequences with joint positions (all, or those in ``ids``), in sequence_id order.
    Raises KeyError naming ids that are not stored (or have no joints)."""
    where, params = _ids_filter(ids)
    heads = read_only_query(settings, f"SELECT s.* FROM mocap_sequences s {where} ORDER BY s.sequence_id", params=params)
    frames = read_only_query(settings, f"SELECT f.sequence_id, f.frame, f.joints FROM mocap_frames f SEMI JOIN "
                                       f"(SELECT s.sequence_id FROM mocap_sequences s {where}) s USING (sequence_id) "
                                       "WHERE f.joints IS NOT NULL ORDER BY 1, 2", params=params)
    rows = _groups(frames)
    out = []
    for h in heads.to_pylist():
        names = tuple(json.loads(h["joint_names"] or "[]"))
        if not names or h["sequence_id"] not in rows:
            continue
        t = frames.slice(rows[h["sequence_id"]].start, rows[h["sequence_id"]].stop - rows[h["sequence_id"]].start)
        out.append(StoredMotion(h["sequence_id"], h["source"], h["subject"], h["split"], h["fps"], names,
                                t.column("frame").to_numpy(), _lists(t, "joints", 3 * len(names)).reshape(len(t), -1, 3)))
    missing = set(ids or []) - {m.sequence_id for m in out}
    if missing:
        raise KeyError(f"no stored mocap sequence with joints: {', '.join(sorted(missing))} (import it with hmmr import bvh)")
    return out


def fit_tables(motion: StoredMotion, fit: JointFit, *, body_model: str, body_source: str, config: dict,
               fitted_at: datetime | None = None) -> dict[str, pa.Table]:
    """The ``mocap_fits`` row and ``mocap_fit_frames`` rows of one fitted sequence."""
    n = len(motion.frames)
    head = {
        "sequence_id": [motion.sequence_id], "body_model": [body_model], "body_source": [body_source], "n_frames": [n],
        "fps": [motion.fps], "betas": np.asarray(fit.betas, np.float32)[None],
        "mean_error_mm": [fit.mean_error_mm], "max_error_mm": [fit.max_error_mm],
        "raw_mean_error_mm": [float(np.mean(fit.raw_error_mm))],
        "joint_errors": [json.dumps({k: round(v, 2) for k, v in fit.per_joint_mm().items()})],
        "corrections": [json.dumps({c.smpl: np.round(fit.corrections[i], 4).tolist() for i, c in enumerate(fit.matched) if c.corrected})],
        "iterations": [fit.iterations], "seconds": [fit.seconds], "config": [json.dumps(config, sort_keys=True)],
        "fitted_at": [fitted_at or datetime.now(timezone.utc).replace(tzinfo=None)],
    }
    frames = {
        "sequence_id": [motion.sequence_id] * n, "frame": motion.frames.astype(np.int32),
        "pose": np.asarray(fit.pose, np.float32), "trans": np.asarray(fit.trans, np.float32),
        "joints": np.asarray(fit.joints, np.float32).reshape(n, -1), "keypoints": np.asarray(fit.keypoints, np.float32).reshape(n, -1),
        "error_mm": np.asarray(fit.joint_error_mm, np.float32).mean(1),
    }
    return {"mocap_fits": schemas.to_arrow("mocap_fits", head), "mocap_fit_frames": schemas.to_arrow("mocap_fit_frames", frames)}


def read_fits(settings: Settings, ids: list[str] | None = None) -> list[StoredFit]:
    """The stored fits (all, or those of ``ids``) with their sequence's subject and split, in
    sequence_id order. Raises KeyError naming ids that have no fit."""
    where, params = _ids_filter(ids)
    where = where.replace("s.sequence_id", "f.sequence_id")
    heads = read_only_query(settings, "SELECT f.*, s.subject, s.split FROM mocap_fits f JOIN mocap_sequences s USING (sequence_id) "
                                      f"{where} ORDER BY f.sequence_id", params=params)
    frames = read_only_query(settings, f"SELECT * FROM mocap_fit_frames f {where} ORDER BY sequence_id, frame", params=params)
    rows = _groups(frames)
    out = []
    for h, betas in zip(heads.to_pylist(), _lists(heads, "betas", 10)):
        r = rows.get(h["sequence_id"], slice(0, 0))
        t = frames.slice(r.start, r.stop - r.start)
        n = len(t)
        out.append(StoredFit(h["sequence_id"], h["subject"], h["split"], h["fps"], h["body_model"], h["mean_error_mm"], betas,
                             t.column("frame").to_numpy(), _lists(t, "pose", 72), _lists(t, "trans", 3),
                             _lists(t, "joints", 72).reshape(n, 24, 3), _lists(t, "keypoints", 75).reshape(n, 25, 3)))
    missing = set(ids or []) - {f.sequence_id for f in out}
    if missing:
        raise KeyError(f"no body-model fit for {', '.join(sorted(missing))} (run hmmr mocap fit first)")
    return out
