"""Skeletal motion: a joint tree with per-frame local rotations, world positions by forward kinematics,
and resampling to another frame rate.

Conventions: lengths in metres, a y-up world, quaternions in scipy's ``(x, y, z, w)`` order, frame
``k`` at time ``k / fps`` seconds from the first frame. Everything is vectorised over frames: forward
kinematics loops over the J joints only, never over frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation


@dataclass(frozen=True)
class Motion:
    """One motion of one skeleton.

    ``names (J,)`` joint names, parents before children; ``parents (J,)`` parent index, -1 for the
    root; ``offsets (J, 3)`` metres, each joint's position in its parent's frame at rest;
    ``rotations (F, J, 4)`` local rotation of each joint relative to its parent (the root's is
    relative to the world), quaternions ``(x, y, z, w)``; ``root_positions (F, 3)`` metres, the root
    joint's world position; ``fps`` frames per second.
    """

    names: tuple[str, ...]
    parents: np.ndarray
    offsets: np.ndarray
    rotations: np.ndarray
    root_positions: np.ndarray
    fps: float

    @property
    def n_frames(self) -> int:
        return int(self.rotations.shape[0])

    @property
    def n_joints(self) -> int:
        return len(self.names)

    def positions(self) -> np.ndarray:
        """World joint positions ``(F, J, 3)``, metres, y-up."""
        return forward_kinematics(self.parents, self.offsets, self.rotations, self.root_positions)


def forward_kinematics(parents: np.ndarray, offsets: np.ndarray, rotations: np.ndarray,
                       root_positions: np.ndarray) -> np.ndarray:
    """World positions ``(F, J, 3)`` of joints given ``parents (J,)`` (each parent before its
    children), ``offsets (J, 3)``, local quaternions ``rotations (F, J, 4)`` and ``root_positions
    (F, 3)``: ``p_j = p_parent + R_parent offset_j`` and ``R_j = R_parent r_j``. Offsets of the roots
    (parent -1) are not added: their position is ``root_positions``."""
    F, J = rotations.shape[:2]
    pos = np.empty((F, J, 3))
    world: list[Rotation] = []
    for j in range(J):
        local = Rotation.from_quat(rotations[:, j])
        p = parents[j]
        if p < 0:
            world.append(local)
            pos[:, j] = root_positions
        else:
            world.append(world[p] * local)
            pos[:, j] = pos[:, p] + world[p].apply(offsets[j])
    return pos


def frame_times(n_frames: int, fps_in: float, fps_out: float) -> np.ndarray:
    """Times (seconds) of the output frames ``k / fps_out`` that lie within the input's span
    ``[0, (n_frames - 1) / fps_in]`` (a tiny tolerance keeps the last frame of an exact ratio)."""
    duration = (n_frames - 1) / fps_in
    n_out = int(np.floor(duration * fps_out + 1e-6)) + 1
    return np.minimum(np.arange(n_out) / fps_out, duration)


def _brackets(n_frames: int, fps_in: float, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each time, the input frames ``i0 <= t * fps_in <= i1 = i0 + 1`` and the weight of ``i1``."""
    x = times * fps_in
    i0 = np.clip(np.floor(x + 1e-9).astype(np.int64), 0, max(n_frames - 2, 0))
    i1 = np.minimum(i0 + 1, n_frames - 1)
    alpha = np.clip(x - i0, 0.0, 1.0)
    return i0, i1, alpha


def resample_linear(values: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """``values (F, ...)`` sampled at ``fps_in``, linearly interpolated at ``k / fps_out``."""
    i0, i1, a = _brackets(len(values), fps_in, frame_times(len(values), fps_in, fps_out))
    a = a.reshape((-1,) + (1,) * (values.ndim - 1))
    return (1 - a) * values[i0] + a * values[i1]


def resample_quaternions(quats: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """``quats (F, J, 4)`` sampled at ``fps_in``, spherically interpolated (slerp) at ``k / fps_out``."""
    F, J = quats.shape[:2]
    i0, i1, a = _brackets(F, fps_in, frame_times(F, fps_in, fps_out))
    r0 = Rotation.from_quat(quats[i0].reshape(-1, 4))
    r1 = Rotation.from_quat(quats[i1].reshape(-1, 4))
    step = (r0.inv() * r1).as_rotvec() * np.repeat(a, J)[:, None]  # shortest arc, a fraction of it
    return (r0 * Rotation.from_rotvec(step)).as_quat().reshape(len(i0), J, 4)


def resample_axis_angle(poses: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """``poses (F, J * 3)`` axis-angle joint rotations (e.g. SMPL's 72), slerped at ``k / fps_out``."""
    F = len(poses)
    quats = Rotation.from_rotvec(poses.reshape(-1, 3)).as_quat().reshape(F, -1, 4)
    out = resample_quaternions(quats, fps_in, fps_out)
    return Rotation.from_quat(out.reshape(-1, 4)).as_rotvec().reshape(len(out), -1)


def resample(motion: Motion, fps: float = 30.0) -> Motion:
    """``motion`` at ``fps``: output frame ``k`` is at ``k / fps`` seconds (up to the input's last
    frame), rotations slerped and root positions linearly interpolated between the two nearest
    input frames."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if motion.n_frames < 2 or np.isclose(fps, motion.fps, rtol=0, atol=1e-9):
        return Motion(motion.names, motion.parents, motion.offsets, motion.rotations.copy(),
                      motion.root_positions.copy(), float(fps))
    return Motion(
        names=motion.names, parents=motion.parents, offsets=motion.offsets,
        rotations=resample_quaternions(motion.rotations, motion.fps, fps),
        root_positions=resample_linear(motion.root_positions, motion.fps, fps), fps=float(fps),
    )
