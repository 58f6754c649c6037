"""``hmmr import h36m``: Human3.6M joint positions and MoSh SMPL parameters into the mocap tables.

Two kinds of file, matched by subject and action into one sequence ``h36m:<subject>:<action>``:

* joint positions, ``S<n>/MyPoseFeatures/D3_Positions/<action>.cdf`` (NASA CDF, read with cdflib):
  variable ``Pose`` of shape (1, N, 96) (or (N, 96)): the 32 joints of :data:`H36M_JOINTS`,
  millimetres, H36M's z-up world, 50 fps. Stored in metres, turned y-up: (x, y, z) -> (x, z, -y).
* MoSh parameters, ``.../S<n>/<action>.pkl`` or ``.npz`` (the fits the HMMR authors trained on, as
  commonly passed around): ``poses`` (N, 72) SMPL axis-angle (also read as ``new_poses`` or
  ``pose``), ``betas`` ((10,), (N, 10) or longer: the first 10; also ``shape``), ``trans`` (N, 3)
  metres (optional), ``gender`` (optional), ``mocap_framerate`` (optional; else ``source_fps``, 50).
  Kept as the file gives them (the fit's own frame, not turned). A name ending ``_cam<k>_aligned``
  is a fit turned into camera k: it is its own sequence ``h36m:<subject>:<action>:cam<k>``.

When both exist for a take the shorter decides the length (the note says so). Every stream is
resampled to ``fps`` (default 30): positions and translations linearly, rotations by slerp. The
subject is the ``S<n>`` folder above the file; the default split is the standard protocol's (S9 and
S11 test, :mod:`warehouse.mocap.split`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hmmr.config import Settings
from warehouse.mocap.motion import resample_axis_angle, resample_linear
from warehouse.mocap.safe_pickle import load_arrays
from warehouse.mocap.tables import ImportResult, MocapFormatError, MocapSequence, file_sha256, import_files

SOURCE_FPS = 50.0
# Human3.6M's 32 joints (its metadata's order; each unnamed "Site" end point is named after its parent)
H36M_JOINTS = (
    "Hips", "RightUpLeg", "RightLeg", "RightFoot", "RightToeBase", "RightToeBaseSite", "LeftUpLeg", "LeftLeg",
    "LeftFoot", "LeftToeBase", "LeftToeBaseSite", "Spine", "Spine1", "Neck", "Head", "HeadSite", "LeftShoulder",
    "LeftArm", "LeftForeArm", "LeftHand", "LeftHandThumb", "LeftHandThumbSite", "L_Wrist_End", "L_Wrist_EndSite",
    "RightShoulder", "RightArm", "RightForeArm", "RightHand", "RightHandThumb", "RightHandThumbSite", "R_Wrist_End",
    "R_Wrist_EndSite",
)
H36M_PARENTS = (-1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 0, 11, 12, 13, 14, 12, 16, 17, 18, 19, 20, 19, 22, 12, 24, 25, 26,
                27, 28, 27, 30)
_SUBJECT = re.compile(r"^S\d+$")
_CAMERA = re.compile(r"^(?P<action>.+?)_cam(?P<cam>\d+)_aligned$")
_ALIASES = {"poses": ("poses", "new_poses", "pose"), "betas": ("betas", "shape"), "trans": ("trans",)}


class H36mFormatError(MocapFormatError):
    """Not a Human3.6M joint or MoSh file; the message names the file and what is wrong."""


@dataclass(frozen=True)
class H36mTake:
    """One subject's action (one camera's, for camera-aligned MoSh): its joint and/or MoSh file."""

    subject: str | None
    action: str
    camera: int | None = None
    joints_file: Path | None = None
    mosh_file: Path | None = None

    @property
    def name(self) -> str:
        return f"{self.subject}/{self.action}" + ("" if self.camera is None else f" cam{self.camera}")

    @property
    def sequence_id(self) -> str:
        return f"h36m:{self.subject}:{self.action}" + ("" if self.camera is None else f":cam{self.camera}")

    def __str__(self) -> str:
        return str(self.joints_file or self.mosh_file)


def _subject(path: Path) -> str | None:
    return next((part for part in reversed(path.parent.parts) if _SUBJECT.match(part)), None)


def takes(paths: list[Path]) -> list[H36mTake]:
    """Group the files named (folders: every ``D3_Positions/*.cdf`` and every ``.pkl`` / ``.npz``
    below them) by subject, action and camera."""
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(f for f in p.rglob("*") if f.is_file() and (
                (f.suffix.lower() == ".cdf" and f.parent.name == "D3_Positions") or f.suffix.lower() in (".pkl", ".npz")))
        else:
            files.append(p)
    groups: dict[tuple, dict] = {}
    for f in sorted(files):
        subject, camera, action = _subject(f), None, f.stem
        kind = "joints_file" if f.suffix.lower() == ".cdf" else "mosh_file"
        if kind == "mosh_file" and (m := _CAMERA.match(f.stem)):
            action, camera = m.group("action"), int(m.group("cam"))
        slot = groups.setdefault((subject, action, camera), {})
        if kind in slot:  # e.g. both a .pkl and a .npz of one take: keep them apart, the import reports the second
            slot = groups.setdefault((subject, action, camera, f), {})
        slot[kind] = f
    return [H36mTake(key[0], key[1], key[2], **files) for key, files in groups.items()]


def read_joints(path: Path) -> np.ndarray:
    """``(N, 32, 3)`` metres, y-up, from a D3_Positions ``.cdf`` file."""
    import cdflib

    try:
        cdf = cdflib.CDF(str(path))
        pose = np.asarray(cdf.varget("Pose"), np.float64)
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        raise H36mFormatError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except (OSError, ValueError, KeyError, TypeError, IndexError):  # cdflib: not a CDF (OSError), no Pose (ValueError)
        raise H36mFormatError(f"{path}: not a Human3.6M D3_Positions file (a CDF file with a Pose variable)") from None
    pose = pose.reshape(-1, pose.shape[-1]) if pose.ndim >= 2 else pose
    if pose.ndim != 2 or pose.shape[1] != 96:
        raise H36mFormatError(f"{path}: Pose is {pose.shape}, expected (1, N, 96): 32 joints x 3")
    xyz = pose.reshape(-1, 32, 3) / 1000.0
    return np.stack([xyz[..., 0], xyz[..., 2], -xyz[..., 1]], -1)


def read_mosh(path: Path, source_fps: float = SOURCE_FPS) -> dict:
    """``poses (N, 72)``, ``betas (10,)`` or ``(N, 10)``, ``trans (N, 3)`` or None, ``gender``, ``fps``."""
    try:
        data = dict(np.load(path, allow_pickle=False)) if path.suffix.lower() == ".npz" else load_arrays(path)
    except OSError as exc:
        raise H36mFormatError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except ValueError as exc:
        raise H36mFormatError(f"{path}: not a MoSh parameter file ({exc})") from None
    if not isinstance(data, dict):
        raise H36mFormatError(f"{path}: not a MoSh parameter file (holds a {type(data).__name__}, not a dict)")
    found = {k: next((data[a] for a in names if a in data), None) for k, names in _ALIASES.items()}
    if found["poses"] is None or found["betas"] is None:
        raise H36mFormatError(f"{path}: not a MoSh parameter file (needs poses and betas; has {', '.join(sorted(data))})")
    poses = np.asarray(found["poses"], np.float64)
    n = len(poses)
    betas = np.asarray(found["betas"], np.float64)
    betas = betas[..., :10] if betas.ndim == 2 else betas.reshape(-1)[:10]
    trans = None if found["trans"] is None else np.asarray(found["trans"], np.float64)
    if poses.ndim != 2 or poses.shape[1] < 72 or betas.shape[-1] != 10 or (betas.ndim == 2 and len(betas) != n) \
            or (trans is not None and trans.shape != (n, 3)):
        raise H36mFormatError(f"{path}: poses {poses.shape}, betas {betas.shape}, trans "
                              f"{None if trans is None else trans.shape}: expected (N, 72), (10,) or (N, 10), (N, 3)")
    gender = data.get("gender")
    fps = float(np.asarray(data["mocap_framerate"])) if "mocap_framerate" in data else source_fps
    return {"poses": poses[:, :72], "betas": betas, "trans": trans, "fps": fps,
            "gender": None if gender is None else str(np.asarray(gender)).lower()}


def read_take(take: H36mTake, *, fps: float = 30.0, source_fps: float = SOURCE_FPS) -> list[MocapSequence]:
    """One take as a sequence at ``fps``."""
    where = take.joints_file or take.mosh_file
    if take.subject is None:
        raise H36mFormatError(f"{where}: no S<n> subject folder above the file (expected e.g. S9/MyPoseFeatures/D3_Positions/)")
    if take.joints_file is None and take.mosh_file is None:
        raise H36mFormatError(f"{take.name}: no file")
    joints = read_joints(take.joints_file) if take.joints_file else None
    mosh = read_mosh(take.mosh_file, source_fps) if take.mosh_file else None
    notes = []
    rate = SOURCE_FPS if joints is not None else mosh["fps"]
    if joints is not None and mosh is not None:
        if mosh["fps"] != rate:
            raise H36mFormatError(f"{take.mosh_file}: MoSh at {mosh['fps']:g} fps, joints at {rate:g} fps: cannot pair them")
        if len(joints) != len(mosh["poses"]):
            notes.append(f"joints {len(joints)} frames, MoSh {len(mosh['poses'])}: kept the first {min(len(joints), len(mosh['poses']))}")
    n = min(len(a) for a in (joints, None if mosh is None else mosh["poses"]) if a is not None)
    if n < 1:
        raise H36mFormatError(f"{where}: no frames")
    if rate != fps:
        notes.append(f"resampled {rate:g} -> {fps:g} fps")
    out_joints = None if joints is None else resample_linear(joints[:n], rate, fps)
    pose = shape = trans = None
    if mosh is not None:
        pose = resample_axis_angle(mosh["poses"][:n], rate, fps)
        m = len(pose)
        betas = mosh["betas"]
        shape = resample_linear(betas[:n], rate, fps) if betas.ndim == 2 else np.broadcast_to(betas, (m, 10))
        trans = None if mosh["trans"] is None else resample_linear(mosh["trans"][:n], rate, fps)
        notes.append(f"SMPL from {take.mosh_file}" + ("" if take.camera is None else f" (camera {take.camera} frame)"))
    path = take.joints_file or take.mosh_file
    return [MocapSequence(
        sequence_id=take.sequence_id, source="h36m", subject=take.subject, trial=take.action, path=str(path.resolve()),
        sha256=file_sha256(path), source_fps=rate, source_frames=len(joints) if joints is not None else len(mosh["poses"]), fps=fps,
        skeleton="h36m32" if joints is not None else None, joint_names=H36M_JOINTS if joints is not None else (),
        joint_parents=H36M_PARENTS if joints is not None else None, joints=out_joints, pose=pose, shape=shape,
        trans=trans, gender=None if mosh is None else mosh["gender"], notes="; ".join(notes),
    )]


def import_h36m(paths: list[Path], settings: Settings, *, fps: float = 30.0, source_fps: float = SOURCE_FPS,
                test_subjects: list[str] | None = None, progress: Callable[[H36mTake], None] | None = None) -> ImportResult:
    """Import Human3.6M joint and MoSh files and folders; a file that is neither is reported and skipped."""
    return import_files(takes(paths), lambda t: read_take(t, fps=fps, source_fps=source_fps),
                        identify=lambda t: ("h36m", t.subject), settings=settings, test_subjects=test_subjects,
                        progress=progress)
