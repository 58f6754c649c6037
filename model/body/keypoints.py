"""From a body mesh to the 25 HMMR keypoints and the 14 LSP joints, for SMPL and for the open model.

Every keypoint is a fixed linear map of the mesh: ``keypoints = W_v @ vertices + W_j @ joints`` with
``W_v (25, V)`` and ``W_j (25, 24)`` (:class:`KeypointMap`), in the HMMR-25 order of
``pose_harvest.keypoints.HMMR25``.

* SMPL with HMMR's own regressor (``cocoplus_regressor`` of 25 rows, in the released
  ``neutral_smpl_with_cocoplustoesankles_reg.pkl``): that regressor, as the official code uses it.
* Any other SMPL file: the usual approximation (as in SPIN and smplx's ``VertexJointSelector``):
  SMPL's joints for the limbs and the neck, and single vertices of the SMPL template for the face
  and the feet. The face/feet vertex ids are smplx's ``vertex_ids['smplh']`` (``smplx/vertex_ids.py``,
  the OpenPose landmarks of the SMPL topology); the head top is vertex 411, the crown of the SMPL
  template that public SMPL landmark tables use as ``HEAD_TOP``.
* The open model: anny's COCO-17 + toes + heels regressor and the crown vertex, stored in its file
  (see ``model.body.open_model``).

HMMR's slots 0 and 5 are the heels (as the 2D pseudo-ground truth of OpenPose-style detectors has
them); LSP's joints 0 and 5 are the ankles. :func:`lsp_joints` takes the first 14 keypoints with the
ankles (slots 24 and 23) in those two places, which is what 3D metrics on LSP-14 compare.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from smplx.vertex_ids import vertex_ids as SMPLX_VERTEX_IDS

from pose_harvest.keypoints import HMMR25, HMMR25_TO_LSP14

SMPL_HEAD_TOP_VERTEX = 411

#: HMMR-25 keypoint -> SMPL joint index (SMPL order: see ``model.body.open_model.SMPL_JOINTS``).
SMPL_JOINT_KEYPOINTS = {
    "right_knee": 5, "right_hip": 2, "left_hip": 1, "left_knee": 4,
    "right_wrist": 21, "right_elbow": 19, "right_shoulder": 17, "left_shoulder": 16,
    "left_elbow": 18, "left_wrist": 20, "neck": 12, "left_ankle": 7, "right_ankle": 8,
}
#: HMMR-25 keypoint -> key of smplx's landmark vertex ids (the same names smplx's selector uses).
LANDMARK_KEYS = {
    "nose": "nose", "right_eye": "reye", "left_eye": "leye", "right_ear": "rear", "left_ear": "lear",
    "left_big_toe": "LBigToe", "left_small_toe": "LSmallToe", "left_heel": "LHeel",
    "right_big_toe": "RBigToe", "right_small_toe": "RSmallToe", "right_heel": "RHeel",
}


@dataclass(frozen=True)
class KeypointMap:
    """``keypoints (B, 25, 3) = vertex_weights (25, V) @ vertices + joint_weights (25, 24) @ joints``."""

    vertex_weights: np.ndarray
    joint_weights: np.ndarray
    source: str  #: which regressor this is, in words

    def landmark_vertex_ids(self) -> dict[str, int]:
        """smplx-style landmark vertex ids (nose, eyes, ears, toes, heels): each keypoint's heaviest vertex."""
        return {key: int(np.argmax(self.vertex_weights[HMMR25.index(name)])) for name, key in LANDMARK_KEYS.items()}


def smpl_keypoint_map(n_vertices: int, cocoplus_regressor: np.ndarray | None = None) -> KeypointMap:
    """The keypoint map of an SMPL file: HMMR's 25-row regressor if it has one, else joints + vertices."""
    if cocoplus_regressor is not None and cocoplus_regressor.shape == (len(HMMR25), n_vertices):
        return KeypointMap(cocoplus_regressor, np.zeros((len(HMMR25), 24)), "HMMR cocoplus regressor (25 rows, from the SMPL file)")
    vertex_weights = np.zeros((len(HMMR25), n_vertices))
    joint_weights = np.zeros((len(HMMR25), 24))
    smplh_ids = SMPLX_VERTEX_IDS["smplh"]
    for k, name in enumerate(HMMR25.joints):
        if name in SMPL_JOINT_KEYPOINTS:
            joint_weights[k, SMPL_JOINT_KEYPOINTS[name]] = 1.0
        elif name == "head_top":
            vertex_weights[k, SMPL_HEAD_TOP_VERTEX] = 1.0
        else:
            vertex_weights[k, smplh_ids[LANDMARK_KEYS[name]]] = 1.0
    return KeypointMap(vertex_weights, joint_weights, "SMPL joints + smplx landmark vertices (head top: vertex 411)")


def regress_keypoints(vertex_weights: torch.Tensor, joint_weights: torch.Tensor, vertices: torch.Tensor, joints: torch.Tensor) -> torch.Tensor:
    """HMMR-25 keypoints ``(B, 25, 3)`` from ``vertices (B, V, 3)`` and ``joints (B, 24, 3)`` (metres)."""
    return torch.einsum("kv,bvc->bkc", vertex_weights, vertices) + torch.einsum("kj,bjc->bkc", joint_weights, joints)


def lsp_joints(keypoints: torch.Tensor) -> torch.Tensor:
    """The 14 LSP joints ``(..., 14, 3)`` of HMMR-25 keypoints ``(..., 25, 3)`` (ankles in slots 0 and 5)."""
    return keypoints[..., torch.as_tensor(HMMR25_TO_LSP14, device=keypoints.device), :]
