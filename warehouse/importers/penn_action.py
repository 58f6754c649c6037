"""``hmmr import penn-action``: Penn Action label files (``labels/NNNN.mat``) into the harvest tables.

Each MATLAB file holds one sequence of one person: ``x``, ``y`` and ``visibility`` (nframes x 13,
pixels and 0/1, joints in :data:`PENN13` order), ``bbox`` (x1, y1, x2, y2 per frame; some files have
one row fewer than frames), ``dimensions`` (height, width, nframes), ``nframes``, ``action``,
``pose`` (camera view) and ``train`` (1 for the training split). A joint marked invisible keeps its
annotated position with confidence 0.

The sequence becomes a video ``penn_action:<file stem>`` with one person, track id 0 (see
:mod:`warehouse.importers.ground_truth`); the frames are a JPEG folder, so the row has no raw file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from hmmr.config import Settings
from pose_harvest.keypoints import HMMR25, PENN13, convert
from warehouse.importers.ground_truth import AnnotatedPerson, AnnotatedVideo, ImportedVideo, store
from warehouse.lake import Lake

DETECTOR = "penn_action"
FIELDS = ("x", "y", "visibility", "nframes")


class PennActionFormatError(ValueError):
    """The file is not a Penn Action label file; the message says what is wrong."""


def _scalar(value):
    arr = np.asarray(value).ravel()
    return arr[0] if arr.size else None


def read_penn_action(path: Path) -> AnnotatedVideo:
    path = Path(path)
    try:
        mat = scipy.io.loadmat(str(path))
    except (OSError, ValueError, NotImplementedError, scipy.io.matlab.MatReadError) as exc:
        raise PennActionFormatError(f"{path}: not a MATLAB label file ({exc})") from exc
    missing = [f for f in FIELDS if f not in mat]
    if missing:
        raise PennActionFormatError(f"{path}: no {', '.join(missing)} field (is it a Penn Action labels/*.mat file?)")
    x, y, vis = (np.asarray(mat[k], dtype=np.float32) for k in ("x", "y", "visibility"))
    n = int(_scalar(mat["nframes"]))
    if not (x.shape == y.shape == vis.shape == (n, len(PENN13))):
        raise PennActionFormatError(f"{path}: x/y/visibility are {x.shape}/{y.shape}/{vis.shape}, expected ({n}, {len(PENN13)})")
    kps = convert(np.stack([x, y, (vis > 0).astype(np.float32)], -1), PENN13, HMMR25)
    boxes = np.full((n, 4), np.nan, np.float32)
    if "bbox" in mat and np.size(mat["bbox"]):
        bbox = np.asarray(mat["bbox"], dtype=np.float32).reshape(-1, 4)[:n]
        boxes[: len(bbox)] = bbox
    dims = np.asarray(mat.get("dimensions", []), dtype=np.int64).ravel()
    height, width = (int(dims[0]), int(dims[1])) if dims.size >= 2 else (None, None)
    action, pose = (str(_scalar(mat[k])) if k in mat and _scalar(mat[k]) is not None else None for k in ("action", "pose"))
    train = bool(_scalar(mat["train"]) == 1) if "train" in mat else None
    return AnnotatedVideo(
        video_id=f"penn_action:{path.stem}", source=str(path.resolve()), detector=DETECTOR, extractor="penn_action",
        tags={"import": "penn_action", "dataset": "penn_action", "action": action, "pose": pose, "train": train},
        n_frames=n, people=[AnnotatedPerson(0, np.arange(n), kps, boxes)], width=width, height=height,
    )


def label_files(paths: list[Path]) -> list[Path]:
    """The ``.mat`` files named, with folders (e.g. ``Penn_Action/labels``) expanded in name order."""
    out = []
    for p in map(Path, paths):
        out.extend(sorted(p.glob("*.mat")) if p.is_dir() else [p])
    return out


def import_penn_action(paths: list[Path], settings: Settings) -> list[ImportedVideo]:
    """Read every file first (a bad file stores nothing), then write one transaction per sequence."""
    videos = [read_penn_action(f) for f in label_files(paths)]
    settings.ensure_dirs()
    with Lake(settings=settings) as lake:
        return store(videos, lake)
