"""``hmmr import 3dpw``: 3DPW sequence files (``sequenceFiles/{train,validation,test}/*.pkl``) into the
mocap tables, one sequence per person.

A sequence file is a (Python 2) pickle, read with ``encoding="latin1"``, of a dict: ``sequence``
(name), and per person lists: ``betas`` ((10,) or (300,): the first 10 are SMPL's), ``poses`` ((N, 72)
SMPL axis-angle), ``trans`` ((N, 3) metres), ``jointPositions`` ((N, 72): the 24 SMPL joints, metres),
``campose_valid`` ((N,)), ``genders`` ('m' | 'f'), ``poses2d``; shared: ``cam_poses`` ((N, 4, 4)
world-to-camera), ``cam_intrinsics`` ((3, 3)), ``img_frame_ids``. A one-person file may hold the
arrays themselves instead of one-item lists. Frames are the video's, at 30 fps: frame ``i`` is
``imageFiles/<sequence>/image_{i:05d}.jpg``, so nothing is resampled. 3DPW's own split (the folder)
goes into ``split``; its files do not name the actors, so ``subject`` is NULL. Positions stay in
3DPW's world frame.

Only numpy arrays and plain Python values are unpickled (:mod:`warehouse.mocap.safe_pickle`): a
pickle asking for anything else is refused rather than run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from hmmr.config import Settings
from model.body.open_model import SMPL_JOINTS, SMPL_PARENTS
from warehouse.mocap.safe_pickle import load_arrays
from warehouse.mocap.tables import ImportResult, MocapFormatError, MocapSequence, file_sha256, import_files

FPS = 30.0
SPLITS = ("train", "validation", "test")
REQUIRED = ("sequence", "poses", "trans", "betas", "jointPositions")
_GENDERS = {"m": "male", "f": "female", "male": "male", "female": "female", "neutral": "neutral"}


class Pw3dFormatError(MocapFormatError):
    """Not a 3DPW sequence file; the message names the file and what is wrong."""


def sequence_files(paths: list[Path]) -> list[Path]:
    """The ``.pkl`` files named, with folders (the 3DPW root, ``sequenceFiles`` or a split folder)
    expanded recursively in name order."""
    out = []
    for p in map(Path, paths):
        out.extend(sorted(p.rglob("*.pkl")) if p.is_dir() else [p])
    return out


def _per_person(value) -> list:
    """A per-person field: a list (one item per person), or one person's array."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


def read_3dpw(path: Path) -> list[MocapSequence]:
    """The people of one sequence file, each as a sequence ``3dpw:<sequence>:<person>``."""
    path = Path(path)
    try:
        data = load_arrays(path)
    except OSError as exc:
        raise Pw3dFormatError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except ValueError as exc:
        raise Pw3dFormatError(f"{path}: not a 3DPW sequence file ({exc})") from None
    if not isinstance(data, dict) or any(k not in data for k in REQUIRED):
        have = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise Pw3dFormatError(f"{path}: not a 3DPW sequence file (needs {', '.join(REQUIRED)}; has {have})")
    name = str(data["sequence"])
    poses, trans, betas, joints = (_per_person(data[k]) for k in ("poses", "trans", "betas", "jointPositions"))
    n_people = len(poses)
    if not (len(trans) == len(betas) == len(joints) == n_people):
        raise Pw3dFormatError(f"{path}: poses, trans, betas, jointPositions list {len(poses)}, {len(trans)}, "
                              f"{len(betas)}, {len(joints)} people")
    valid = _per_person(data["campose_valid"]) if "campose_valid" in data else [None] * n_people
    genders = _per_person(data["genders"]) if "genders" in data else [None] * n_people
    cam_poses = np.asarray(data["cam_poses"], np.float64) if "cam_poses" in data else None
    intrinsics = np.asarray(data["cam_intrinsics"], np.float64) if "cam_intrinsics" in data else None
    split = path.parent.name if path.parent.name in SPLITS else None
    sha = file_sha256(path)
    out = []
    for i in range(n_people):
        pose, tr, jp = (np.asarray(a, np.float64) for a in (poses[i], trans[i], joints[i]))
        n = len(pose)
        beta = np.asarray(betas[i], np.float64).reshape(-1)
        if pose.shape != (n, 72) or tr.shape != (n, 3) or jp.shape != (n, 72) or beta.size < 10:
            raise Pw3dFormatError(f"{path}: person {i}: poses {pose.shape}, trans {tr.shape}, jointPositions {jp.shape}, "
                                  f"betas {beta.shape}; expected ({n}, 72), ({n}, 3), ({n}, 72), 10 or more betas")
        cam = None
        if cam_poses is not None:
            if cam_poses.shape != (n, 4, 4):
                raise Pw3dFormatError(f"{path}: cam_poses is {cam_poses.shape}, expected ({n}, 4, 4)")
            cam = cam_poses
        ok = None if valid[i] is None else np.asarray(valid[i]).astype(bool).reshape(-1)
        if ok is not None and ok.shape != (n,):
            raise Pw3dFormatError(f"{path}: person {i}: campose_valid has {ok.size} values for {n} frames")
        gender = None if genders[i] is None else _GENDERS.get(str(genders[i]).lower())
        out.append(MocapSequence(
            sequence_id=f"3dpw:{name}:{i}", source="3dpw", subject=None, trial=name, person=i, path=str(path.resolve()),
            sha256=sha, source_fps=FPS, source_frames=n, fps=FPS, skeleton="smpl24", joint_names=SMPL_JOINTS,
            joint_parents=SMPL_PARENTS, joints=jp.reshape(n, 24, 3), pose=pose, shape=np.broadcast_to(beta[:10], (n, 10)),
            trans=tr, cam_pose=cam, valid=ok, gender=gender, camera_intrinsics=intrinsics, split=split,
            notes="" if split else "not in a train/validation/test folder: no split",
        ))
    return out


def import_3dpw(paths: list[Path], settings: Settings, *, progress: Callable[[Path], None] | None = None) -> ImportResult:
    """Import 3DPW sequence files and folders; a file that is not one is reported and skipped."""
    return import_files(sequence_files(paths), read_3dpw, identify=lambda f: ("3dpw", None), settings=settings,
                        progress=progress)
