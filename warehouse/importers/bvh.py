"""BVH motion files (e.g. the CMU Graphics Lab motion capture database) into a :class:`Motion`.

A BVH file is a joint tree (``HIERARCHY``: ``ROOT``/``JOINT`` with an ``OFFSET`` and ``CHANNELS``,
``End Site`` leaves) followed by ``MOTION``: ``Frames: N``, ``Frame Time: dt`` and N lines of channel
values. Rotation channels are Euler angles in degrees, applied in the order listed (``Zrotation
Yrotation Xrotation`` means ``R = Rz Ry Rx``); any order and any subset of axes is read. Position
channels are accepted on the root only.

Units: ``scale`` multiplies offsets and root positions to give metres. CMU's skeletons are in CMU
length units (``CMU_SCALE`` = 0.056444 m = (1 / 0.45) in); a file whose joints are CMU's (it has
``LHipJoint`` and ``RHipJoint``) gets that factor, any other file a factor guessed from its rest-pose
height (metres, centimetres or millimetres, :func:`guess_scale`). BVH worlds are y-up; ``up="z"``
turns a z-up file into y-up.

The cgspeed "MotionBuilder-friendly" CMU release puts a T-pose in front of the motion as frame 1. It
is recognised by its values, not the folder name: the root rotation exactly zero and every rotation a
whole number of degrees, while the next frame is not (real capture never is), and dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from hmmr.config import Settings
from warehouse.mocap.motion import Motion, resample
from warehouse.mocap.tables import ImportResult, MocapFormatError, MocapSequence, file_sha256, import_files

CMU_SCALE = 0.056444  # metres per CMU length unit: (1 / 0.45) inch
UNITS = {"cmu": CMU_SCALE, "m": 1.0, "cm": 0.01, "mm": 0.001, "inch": 0.0254}
_CMU_MARKERS = {"LHipJoint", "RHipJoint"}
_CMU_NAME = re.compile(r"^(\d+)_(\d+)$")  # SS_TT.bvh: CMU subject SS, trial TT
_Z_UP_TO_Y_UP = Rotation.from_euler("x", -90, degrees=True)  # (x, y, z) -> (x, z, -y)


class BvhFormatError(MocapFormatError):
    """The file is not a BVH file this reader understands; the message names the file and the problem."""


@dataclass(frozen=True)
class BvhRead:
    """A file read: its motion (metres, y-up, rest frame dropped) and what reading it found."""

    motion: Motion
    frames_in_file: int  # the MOTION section's frame count
    rest_frame_dropped: bool  # a leading T-pose frame was recognised and left out
    scale: float  # metres per file unit used
    end_sites: dict[str, np.ndarray]  # joint name -> (3,) metres, offset of its End Site (when it has one)


def read_bvh(path, *, scale: float | str | None = None, up: str = "y", drop_rest_frame: bool = True) -> Motion:
    """The motion in a BVH file: metres, y-up, the leading T-pose frame of a CMU
    MotionBuilder-friendly file left out (see :func:`read_bvh_file`)."""
    return read_bvh_file(path, scale=scale, up=up, drop_rest_frame=drop_rest_frame).motion


def read_bvh_file(path, *, scale: float | str | None = None, up: str = "y", drop_rest_frame: bool = True) -> BvhRead:
    """Parse ``path``. ``scale``: metres per file unit, or a unit name from :data:`UNITS`; None picks
    CMU's for a CMU skeleton, else :func:`guess_scale`. ``up``: the file's up axis, ``"y"`` or ``"z"``.

    Raises :class:`BvhFormatError` (one line naming the file) for a file that is not BVH or is cut short.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="latin-1")
    except OSError as exc:
        raise BvhFormatError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    head, sep, body = text.partition("MOTION")
    if not head.lstrip().startswith("HIERARCHY") or not sep:
        raise BvhFormatError(f"{path}: not a BVH file (expected a HIERARCHY section followed by MOTION)")
    skel = _parse_hierarchy(path, head.split()[1:])
    values, frame_time = _parse_motion(path, body, skel.n_channels)
    if up not in ("y", "z"):
        raise ValueError(f"up must be 'y' or 'z', got {up!r}")

    frames_in_file = len(values)
    dropped = drop_rest_frame and _is_rest_frame(values, skel.rot_columns)
    if dropped:
        values = values[1:]
    F, J = len(values), len(skel.names)

    rotations = np.empty((F, J, 4))
    for j, (cols, order) in enumerate(zip(skel.rot_columns, skel.rot_orders)):
        if cols:
            rotations[:, j] = Rotation.from_euler(order.upper(), values[:, cols], degrees=True).as_quat()
        else:
            rotations[:, j] = (0.0, 0.0, 0.0, 1.0)
    root = np.zeros((F, 3)) + skel.offsets[0]
    for axis, col in skel.root_position_columns.items():
        root[:, axis] += values[:, col]

    factor = _scale(path, scale, skel)
    offsets, root = skel.offsets * factor, root * factor
    if up == "z":
        rotations[:, 0] = (_Z_UP_TO_Y_UP * Rotation.from_quat(rotations[:, 0])).as_quat()
        root = _Z_UP_TO_Y_UP.apply(root)
    motion = Motion(names=tuple(skel.names), parents=np.asarray(skel.parents, np.int64), offsets=offsets,
                    rotations=rotations, root_positions=root, fps=_fps(frame_time))
    end_sites = {skel.names[j]: np.asarray(o) * factor for j, o in skel.end_sites.items()}
    return BvhRead(motion, frames_in_file, dropped, factor, end_sites)


def guess_scale(rest_height: float) -> float | None:
    """Metres per unit for a skeleton whose rest pose is ``rest_height`` units tall (lowest to highest
    joint or end site): metres (0.5 to 3), centimetres (50 to 300), millimetres (500 to 3000); None
    when the height fits no unit (ask for ``scale``)."""
    for factor in (1.0, 0.01, 0.001):
        if 0.5 <= rest_height * factor <= 3.0:
            return factor
    return None


@dataclass
class _Skeleton:
    names: list[str]
    parents: list[int]
    offsets: np.ndarray
    rot_columns: list[list[int]]  # per joint: channel columns of its rotations, in file order
    rot_orders: list[str]  # per joint: the axes of those columns, e.g. 'zyx'
    root_position_columns: dict[int, int]  # axis (0 x, 1 y, 2 z) -> channel column
    end_sites: dict[int, tuple[float, float, float]]
    n_channels: int

    def rest_height(self) -> float:
        """Extent along y of the joints and end sites with every rotation at zero (file units)."""
        pos = np.zeros((len(self.names), 3))
        for j, p in enumerate(self.parents):
            pos[j] = self.offsets[j] + (pos[p] if p >= 0 else 0.0)
        ends = [pos[j] + np.asarray(o) for j, o in self.end_sites.items()]
        y = np.concatenate([pos[:, 1], [e[1] for e in ends]])
        return float(y.max() - y.min())


def _parse_hierarchy(path: Path, tokens: list[str]) -> _Skeleton:
    names, parents, offsets, rot_cols, rot_orders, end_sites = [], [], [], [], [], {}
    root_pos: dict[int, int] = {}
    stack: list[int] = []  # open joints (-2 marks an End Site block)
    n_channels, i = 0, 0

    def fail(what: str):
        raise BvhFormatError(f"{path}: bad HIERARCHY near token {i} ({what})")

    def offset_at(k: int) -> tuple[float, float, float]:
        if k + 3 >= len(tokens) or tokens[k] != "OFFSET":
            fail("expected OFFSET x y z")
        try:
            return tuple(float(v) for v in tokens[k + 1:k + 4])
        except ValueError:
            fail("OFFSET values are not numbers")

    while i < len(tokens):
        tok = tokens[i]
        if tok in ("ROOT", "JOINT"):
            if (tok == "ROOT") != (not stack) or i + 2 >= len(tokens) or tokens[i + 2] != "{":
                fail(f"misplaced {tok}")
            parent = stack[-1] if stack else -1
            if parent == -2:
                fail("JOINT inside an End Site")
            names.append(tokens[i + 1])
            parents.append(parent)
            offsets.append(offset_at(i + 3))
            i += 7
            if i >= len(tokens) or tokens[i] != "CHANNELS":
                fail("expected CHANNELS")
            try:
                n = int(tokens[i + 1])
            except (ValueError, IndexError):
                fail("CHANNELS count is not a number")
            channels = tokens[i + 2:i + 2 + n]
            cols, order = [], ""
            for c, name in enumerate(channels):
                kind = name[1:].lower()
                axis = name[:1].lower()
                if axis not in "xyz" or kind not in ("rotation", "position"):
                    fail(f"unknown channel {name!r}")
                if kind == "rotation":
                    cols.append(n_channels + c)
                    order += axis
                elif parent != -1:
                    raise BvhFormatError(f"{path}: position channels on joint {names[-1]!r}: only the root may have them")
                else:
                    root_pos["xyz".index(axis)] = n_channels + c
            if len(set(order)) != len(order):
                fail(f"repeated rotation axis on joint {names[-1]!r}")
            rot_cols.append(cols)
            rot_orders.append(order)
            n_channels += n
            stack.append(len(names) - 1)
            i += 2 + n
        elif tok == "End":
            if not stack or stack[-1] < 0 or tokens[i + 1:i + 3] != ["Site", "{"]:
                fail("misplaced End Site")
            end_sites[stack[-1]] = offset_at(i + 3)
            stack.append(-2)
            i += 7
        elif tok == "}":
            if not stack:
                fail("unbalanced '}'")
            stack.pop()
            i += 1
            if not stack and i < len(tokens):
                fail("only one ROOT is supported")
        else:
            fail(f"unexpected {tok!r}")
    if stack or not names:
        raise BvhFormatError(f"{path}: HIERARCHY is incomplete (unclosed joint or no ROOT)")
    return _Skeleton(names, parents, np.asarray(offsets, np.float64), rot_cols, rot_orders, root_pos, end_sites, n_channels)


def _parse_motion(path: Path, body: str, n_channels: int) -> tuple[np.ndarray, float]:
    tokens = body.split(None, 5)  # 'Frames:', N, 'Frame', 'Time:', dt, data
    if len(tokens) < 5 or tokens[0] != "Frames:" or tokens[2:4] != ["Frame", "Time:"]:
        raise BvhFormatError(f"{path}: MOTION must start with 'Frames: N' and 'Frame Time: dt'")
    try:
        n_frames, frame_time = int(tokens[1]), float(tokens[4])
    except ValueError:
        raise BvhFormatError(f"{path}: frame count {tokens[1]!r} or frame time {tokens[4]!r} is not a number") from None
    if n_frames < 1 or not frame_time > 0:
        raise BvhFormatError(f"{path}: {n_frames} frames of {frame_time} s: need at least one frame and a positive frame time")
    try:
        values = np.array(tokens[5].split() if len(tokens) > 5 else [], dtype=np.float64)
    except ValueError:
        raise BvhFormatError(f"{path}: MOTION data holds a value that is not a number") from None
    if values.size != n_frames * n_channels:
        raise BvhFormatError(f"{path}: {values.size} motion values, expected {n_frames} frames x {n_channels} channels "
                             f"= {n_frames * n_channels} (file cut short?)")
    return values.reshape(n_frames, n_channels), frame_time


def _is_rest_frame(values: np.ndarray, rot_columns: list[list[int]]) -> bool:
    """Frame 0 is an added T-pose: root rotation zero, every rotation whole degrees, and frame 1 not."""
    if len(values) < 2:
        return False
    cols = [c for cs in rot_columns for c in cs]
    whole = lambda row: bool(np.all(row[cols] == np.round(row[cols])))  # noqa: E731
    return bool(np.all(values[0, rot_columns[0]] == 0)) and whole(values[0]) and not whole(values[1])


def _scale(path: Path, scale: float | str | None, skel: _Skeleton) -> float:
    if isinstance(scale, str):
        if scale.lower() not in UNITS:
            raise ValueError(f"unknown unit {scale!r}: use a number (metres per unit) or one of {sorted(UNITS)}")
        return UNITS[scale.lower()]
    if scale is not None:
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        return float(scale)
    if _CMU_MARKERS <= set(skel.names):
        return CMU_SCALE
    guessed = guess_scale(skel.rest_height())
    if guessed is None:
        raise BvhFormatError(f"{path}: cannot tell the length unit (rest pose {skel.rest_height():.3g} units tall): "
                             f"pass a scale (metres per unit) or a unit ({', '.join(UNITS)})")
    return guessed


def _fps(frame_time: float) -> float:
    """Frames per second; a rate within 0.01 of a whole number is that number (CMU writes 1/120 s as
    '.0083333', 120.0005 fps)."""
    fps = 1.0 / frame_time
    return float(round(fps)) if abs(fps - round(fps)) < 0.01 else fps


def bvh_files(paths: list[Path]) -> list[Path]:
    """The files named, with folders expanded to every ``*.bvh`` below them (recursively, name order)."""
    out = []
    for p in map(Path, paths):
        out.extend(sorted(q for q in p.rglob("*") if q.suffix.lower() == ".bvh" and q.is_file()) if p.is_dir() else [p])
    return out


def identify_bvh(path: Path) -> tuple[str, str]:
    """(source, subject) from the file name: a CMU ``SS_TT.bvh`` is source ``cmu``, subject ``SS``;
    any other name is source ``bvh`` with the file stem as its subject."""
    m = _CMU_NAME.match(Path(path).stem)
    return ("cmu", m.group(1)) if m else ("bvh", Path(path).stem)


def read_bvh_sequence(path: Path, *, fps: float = 30.0, scale: float | str | None = None) -> list[MocapSequence]:
    """One file as a stored sequence: joints by forward kinematics after resampling to ``fps``."""
    path = Path(path)
    read = read_bvh_file(path, scale=scale)
    motion = resample(read.motion, fps)
    source, subject = identify_bvh(path)
    m = _CMU_NAME.match(path.stem)
    notes = [f"{read.scale:g} m per file unit"]
    if read.rest_frame_dropped:
        notes.append("dropped the T-pose frame 1")
    if motion.fps != read.motion.fps:
        notes.append(f"resampled {read.motion.fps:g} -> {fps:g} fps (slerp)")
    return [MocapSequence(
        sequence_id=f"{source}:{path.stem}", source=source, subject=subject, trial=m.group(2) if m else None,
        path=str(path.resolve()), sha256=file_sha256(path), source_fps=read.motion.fps, source_frames=read.frames_in_file,
        fps=motion.fps, skeleton="cmu" if _CMU_MARKERS <= set(motion.names) else "bvh", joint_names=motion.names,
        joint_parents=tuple(int(p) for p in motion.parents), joints=motion.positions(), notes="; ".join(notes),
    )]


def import_bvh(paths: list[Path], settings: Settings, *, fps: float = 30.0, scale: float | str | None = None,
               test_subjects: list[str] | None = None, progress: Callable[[Path], None] | None = None) -> ImportResult:
    """Import BVH files and folders into ``mocap_sequences`` / ``mocap_frames``; an unreadable file
    is reported in the result's ``errors`` and skipped."""
    return import_files(bvh_files(paths), lambda f: read_bvh_sequence(f, fps=fps, scale=scale), identify=identify_bvh,
                        settings=settings, test_subjects=test_subjects, progress=progress)
