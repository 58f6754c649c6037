"""A track's SMPL parameters as a skeleton animation with its skinned mesh: what the writers take.

The skeleton part is a :class:`warehouse.mocap.motion.Motion` (SMPL's 24 joints; metres, Y up,
quaternions x, y, z, w), the same type the BVH reader returns, so its forward kinematics
(``Motion.positions()``) is SMPL's own without pose blend shapes: joint j's world transform is its
parent's times a translation by its rest offset times its local rotation.

HMMR predicts in the camera's frame: x right, y down, z away from the camera (the network starts from
a global rotation of (pi, 0, 0), upright in image coordinates). Blender, BVH and glTF expect Y up, so
:func:`skinned_motion` turns the body 180 degrees about x (``CAMERA_TO_Y_UP``) unless told the pose is
already Y-up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from model.body import SMPL_JOINTS, BodyModel
from warehouse.mocap.motion import Motion, forward_kinematics

CAMERA_TO_Y_UP = np.diag([1.0, -1.0, -1.0])  #: 180 degrees about x: camera (y down, z forward) -> Y up, facing the camera


@dataclass(frozen=True)
class SkinnedMotion:
    """A skeleton animation and the mesh it deforms (linear blend skinning), metres, Y up."""

    motion: Motion  #: 24 SMPL joints; the root's offset is its rest position
    vertices: np.ndarray  #: (V, 3) the mesh at rest for the track's shape
    faces: np.ndarray  #: (F, 3) vertex indices
    weights: np.ndarray  #: (V, 24) skinning weights, rows sum to 1

    def rest_joints(self) -> np.ndarray:
        """(24, 3) the joints at rest (every rotation identity), where the mesh is bound."""
        m = self.motion
        identity = np.tile([0.0, 0.0, 0.0, 1.0], (1, m.n_joints, 1))
        return forward_kinematics(m.parents, m.offsets, identity, m.offsets[:1])[0]


def skinned_motion(pose: np.ndarray, shape: np.ndarray, trans: np.ndarray | None, fps: float, body: BodyModel,
                   *, camera_frame: bool = True) -> SkinnedMotion:
    """The animation of a track from its SMPL parameters.

    Args:
        pose: ``(N, 72)`` axis-angle in radians per frame (global rotation, then the 23 joints).
        shape: ``(10,)`` shape coefficients of the track (one body for the whole track).
        trans: ``(N, 3)`` metres added to the body per frame (``BodyModel``'s ``transl``); None = 0.
        fps: frames per second of the track.
        body: the body model the pose belongs to (its rest joints, mesh and skinning weights).
        camera_frame: the pose is in HMMR's camera frame (y down); turn it Y-up for the export.
    """
    pose = np.asarray(pose, np.float64)
    if pose.ndim != 2 or pose.shape[1] != 72 or len(pose) == 0:
        raise ValueError(f"pose must be (N, 72) axis-angle with N >= 1, got {pose.shape}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    trans = np.zeros((len(pose), 3)) if trans is None else np.asarray(trans, np.float64)
    if trans.shape != (len(pose), 3):
        raise ValueError(f"trans must be (N, 3) = ({len(pose)}, 3), got {trans.shape}")
    device, dtype = body.faces.device, body.kp_vertex_weights.dtype
    with torch.no_grad():
        betas = torch.as_tensor(np.asarray(shape, np.float64).reshape(1, -1), dtype=dtype, device=device)
        rest = body(torch.zeros(1, 72, dtype=dtype, device=device), betas)
    rest_joints = rest.joints[0].double().cpu().numpy()
    parents = body.layer.parents.cpu().numpy().astype(np.int64)
    offsets = rest_joints - np.where(parents[:, None] >= 0, rest_joints[np.maximum(parents, 0)], 0.0)
    rotations = Rotation.from_rotvec(pose.reshape(-1, 3)).as_matrix().reshape(len(pose), 24, 3, 3)
    root_positions = rest_joints[0] + trans
    if camera_frame:
        rotations[:, 0] = CAMERA_TO_Y_UP @ rotations[:, 0]
        root_positions = root_positions @ CAMERA_TO_Y_UP.T
    quats = Rotation.from_matrix(rotations.reshape(-1, 3, 3)).as_quat().reshape(len(pose), 24, 4)
    motion = Motion(names=SMPL_JOINTS, parents=parents, offsets=offsets, rotations=quats,
                    root_positions=root_positions, fps=float(fps))
    return SkinnedMotion(motion, vertices=rest.vertices[0].double().cpu().numpy(), faces=body.faces.cpu().numpy(),
                         weights=body.layer.lbs_weights.double().cpu().numpy())
