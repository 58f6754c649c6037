"""Mocap sequences into the ``mocap_sequences`` / ``mocap_frames`` tables, with the held-out split.

Every importer (:mod:`warehouse.importers.bvh`, ``pw3d``, ``h36m``) turns a file into
:class:`MocapSequence` records, already at the stored frame rate; :func:`import_files` reads the
files, decides each subject's side of the split (:mod:`warehouse.mocap.split`) and writes the rows in
batches, one transaction each. A sequence imported again replaces its rows (``sequence_id`` is the
key), so importing a file twice leaves one copy.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa

from hmmr.config import Settings
from warehouse import schemas
from warehouse.lake import Lake
from warehouse.mocap.split import assign_splits

T = TypeVar("T")
BATCH_SEQUENCES = 32  # sequences per write transaction (a CMU trial at 30 fps is ~1,000 frames)


class MocapFormatError(ValueError):
    """A file an importer cannot read; the message is one line naming the file and the problem."""


@dataclass(frozen=True)
class MocapSequence:
    """One person's motion at the stored frame rate ``fps``, frame ``k`` at ``k / fps`` seconds.

    ``joints (F, J, 3)`` metres, world frame (y-up for BVH and Human3.6M) or None (a Human3.6M MoSh
    file without positions); ``pose (F, 72)`` SMPL axis-angle radians, ``shape (F, 10)``, ``trans
    (F, 3)`` metres, ``cam_pose (F, 4, 4)`` world-to-camera, ``valid (F,)``: None where the source has
    none. ``frames (F,)``: stored frame indices (default ``0 .. F-1``). ``split`` None: decided by
    subject when stored.
    """

    sequence_id: str
    source: str
    subject: str | None
    trial: str | None
    path: str
    sha256: str
    source_fps: float
    source_frames: int
    fps: float
    skeleton: str | None
    joint_names: tuple[str, ...]
    joints: np.ndarray | None
    joint_parents: tuple[int, ...] | None = None
    person: int = 0
    pose: np.ndarray | None = None
    shape: np.ndarray | None = None
    trans: np.ndarray | None = None
    cam_pose: np.ndarray | None = None
    valid: np.ndarray | None = None
    gender: str | None = None
    camera_intrinsics: np.ndarray | None = None
    split: str | None = None
    notes: str = ""
    frames: np.ndarray | None = None

    @property
    def n_frames(self) -> int:
        for a in (self.joints, self.pose, self.trans):
            if a is not None:
                return len(a)
        return 0


@dataclass(frozen=True)
class StoredSequence:
    """A stored sequence, for the import summary (no frame data)."""

    sequence_id: str
    source: str
    subject: str | None
    split: str | None
    path: str
    source_fps: float
    source_frames: int
    fps: float
    n_frames: int
    notes: str


@dataclass
class ImportResult:
    """What an import stored (``sequences``, with their split) and the files it skipped (``errors``,
    one line each); ``resplit`` counts stored sequences moved to the other side by ``test_subjects``."""

    sequences: list[StoredSequence] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    resplit: int = 0


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sequence_tables(sequences: Iterable[MocapSequence], imported_at: datetime | None = None) -> dict[str, pa.Table]:
    """The ``mocap_sequences`` and ``mocap_frames`` rows of ``sequences``."""
    imported_at = imported_at or datetime.now(timezone.utc).replace(tzinfo=None)
    heads, frames = [], []
    for s in sequences:
        heads.append({
            "sequence_id": s.sequence_id, "source": s.source, "subject": s.subject, "trial": s.trial, "person": s.person,
            "path": s.path, "sha256": s.sha256, "source_fps": s.source_fps, "source_frames": s.source_frames,
            "fps": s.fps, "n_frames": s.n_frames, "skeleton": s.skeleton, "joint_names": json.dumps(list(s.joint_names)),
            "joint_parents": None if s.joint_parents is None else json.dumps([int(p) for p in s.joint_parents]),
            "gender": s.gender,
            "camera_intrinsics": None if s.camera_intrinsics is None else json.dumps(np.asarray(s.camera_intrinsics).tolist()),
            "split": s.split, "notes": s.notes, "imported_at": imported_at,
        })
        frames.append(_frame_rows(s))
    seq_table = schemas.to_arrow("mocap_sequences", {n: [h[n] for h in heads] for n in schemas.column_names("mocap_sequences")})
    frame_table = pa.concat_tables(frames) if frames else schemas.to_arrow(
        "mocap_frames", {n: [] for n in schemas.column_names("mocap_frames")})
    return {"mocap_sequences": seq_table, "mocap_frames": frame_table}


def _frame_rows(s: MocapSequence) -> pa.Table:
    F = s.n_frames
    frame = np.arange(F) if s.frames is None else np.asarray(s.frames)
    none = [None] * F

    def rows(a: np.ndarray | None, width: int):
        return none if a is None else np.asarray(a, np.float32).reshape(F, width)

    joints = none if s.joints is None else schemas.float_lists(np.asarray(s.joints, np.float32).reshape(F, -1),
                                                               3 * len(s.joint_names))
    return schemas.to_arrow("mocap_frames", {
        "sequence_id": [s.sequence_id] * F, "frame": frame.astype(np.int32), "time_s": frame / s.fps, "joints": joints,
        "pose": rows(s.pose, 72), "shape": rows(s.shape, 10), "trans": rows(s.trans, 3), "cam_pose": rows(s.cam_pose, 16),
        "valid": none if s.valid is None else np.asarray(s.valid, bool),
    })


def stored_splits(lake: Lake, source: str) -> dict[str, str]:
    """Subject -> split of the stored sequences of ``source`` (subjects with a split only)."""
    rows = lake.query("SELECT DISTINCT subject, split FROM mocap_sequences WHERE source = ? AND subject IS NOT NULL "
                      "AND split IS NOT NULL", [source]).to_pylist()
    return {r["subject"]: r["split"] for r in rows}


def apply_splits(lake: Lake, source: str, splits: dict[str, str]) -> int:
    """Move stored sequences of ``source`` whose subject's split differs from ``splits`` to that
    split (one transaction); returns how many moved."""
    stored = lake.query("SELECT * FROM mocap_sequences WHERE source = ? AND subject IS NOT NULL", [source])
    subjects, old = stored.column("subject").to_pylist(), stored.column("split").to_pylist()
    new = [splits.get(s, o) for s, o in zip(subjects, old)]
    moved = sum(a != b for a, b in zip(old, new))
    if moved:
        i = stored.schema.get_field_index("split")
        table = stored.set_column(i, stored.schema.field(i), pa.array(new, pa.string())).cast(schemas.arrow_schema("mocap_sequences"))
        lake.replace_rows({"mocap_sequences": table}, key="sequence_id", message=f"mocap split of {source}: {moved} sequences moved")
    return moved


def import_files(files: list[T], read: Callable[[T], list[MocapSequence]], *,
                 identify: Callable[[T], tuple[str, str | None]], settings: Settings,
                 test_subjects: list[str] | None = None, progress: Callable[[T], None] | None = None,
                 batch_size: int = BATCH_SEQUENCES) -> ImportResult:
    """Read every file (a path, or an importer's group of files) with ``read`` and store its
    sequences; a file that raises :class:`MocapFormatError` is reported in ``errors`` and skipped, the
    rest are stored.

    ``identify(file) -> (source, subject)`` names the file's subject before it is read, so each
    subject's split is decided up front (:func:`warehouse.mocap.split.assign_splits` over the incoming
    and the stored subjects; ``test_subjects`` overrides). ``progress(file)`` is called after each file.
    """
    result = ImportResult()
    by_source: dict[str, set[str]] = {}
    for f in files:
        source, subject = identify(f)
        by_source.setdefault(source, set()).update({subject} - {None})
    settings.ensure_dirs()
    with Lake(settings=settings) as lake:
        splits = {}
        for source, subjects in by_source.items():
            if not subjects:
                continue
            splits[source] = assign_splits(source, subjects, stored_splits(lake, source), test_subjects)
            if test_subjects is not None:
                result.resplit += apply_splits(lake, source, splits[source])
        batch: list[MocapSequence] = []
        seen: dict[str, str] = {}
        for f in files:
            try:
                sequences = read(f)
            except MocapFormatError as exc:
                result.errors.append(str(exc))
                sequences = []
            for s in sequences:
                if s.sequence_id in seen:
                    result.errors.append(f"{f}: sequence {s.sequence_id} already read from {seen[s.sequence_id]}: skipped")
                    continue
                seen[s.sequence_id] = s.path
                if s.split is None and s.subject is not None:
                    s = replace(s, split=splits[s.source][s.subject])
                batch.append(s)
            if len(batch) >= batch_size:
                _write(lake, batch, result)
                batch = []
            if progress is not None:
                progress(f)
        _write(lake, batch, result)
    return result


def _write(lake: Lake, batch: list[MocapSequence], result: ImportResult) -> None:
    if not batch:
        return
    ids = [s.sequence_id for s in batch]
    message = f"mocap {ids[0]}" + (f" and {len(ids) - 1} more" if len(ids) > 1 else "")
    lake.replace_rows(sequence_tables(batch), key="sequence_id", message=message)
    result.sequences.extend(StoredSequence(s.sequence_id, s.source, s.subject, s.split, s.path, s.source_fps,
                                           s.source_frames, s.fps, s.n_frames, s.notes) for s in batch)
