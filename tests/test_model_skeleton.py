"""KeypointSkeleton reorders skinning and keypoint regression: it must equal smplx's full forward."""

from __future__ import annotations

import numpy as np
import smplx
import torch
from smplx.utils import Struct

from model.skeleton import KeypointSkeleton

SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]


def _body(n_verts: int = 400, seed: int = 0) -> smplx.SMPL:
    """An SMPL-format model with random arrays of the right shapes (only the maths is under test)."""
    rng = np.random.default_rng(seed)
    weights = rng.random((n_verts, 24))
    weights /= weights.sum(1, keepdims=True)
    j_reg = rng.random((24, n_verts)) * (rng.random((24, n_verts)) < 0.05)
    j_reg /= j_reg.sum(1, keepdims=True)
    data = Struct(
        v_template=rng.normal(size=(n_verts, 3)) * 0.3, f=rng.integers(0, n_verts, size=(100, 3)),
        J_regressor=j_reg, weights=weights, posedirs=rng.normal(size=(n_verts, 3, 207)) * 0.01,
        shapedirs=rng.normal(size=(n_verts, 3, 10)) * 0.02,
        kintree_table=np.array([[2**32 - 1] + SMPL_PARENTS[1:], list(range(24))]),
    )
    face = {k: 0 for k in ("nose", "reye", "leye", "rear", "lear")}  # smplx's extra joints: unused here
    return smplx.SMPL(model_path="", data_struct=data, num_betas=10, vertex_ids=face, use_feet_keypoints=False, use_hands=False)


def test_equals_the_full_smplx_forward():
    torch.manual_seed(0)
    body = _body()
    reg = torch.zeros(25, 400)
    for k in range(25):  # each keypoint from 3 vertices
        reg[k, torch.randint(0, 400, (3,))] = torch.tensor([0.5, 0.3, 0.2])
    joint_w = torch.zeros(25, 24)
    joint_w[3, 7] = joint_w[4, 12] = 1.0  # two keypoints from the posed joints instead
    reg[3:5] = 0
    skel = KeypointSkeleton(body, reg, joint_w)
    betas, pose = torch.randn(6, 10), 0.4 * torch.randn(6, 72)
    kps, rotmats = skel(betas, pose)
    full = body(betas=betas, global_orient=pose[:, :3], body_pose=pose[:, 3:], return_verts=True)
    torch.testing.assert_close(kps, reg @ full.vertices + joint_w @ full.joints[:, :24], atol=1e-5, rtol=1e-5)
    assert rotmats.shape == (6, 24, 3, 3)
    torch.testing.assert_close(rotmats @ rotmats.transpose(-1, -2), torch.eye(3).expand(6, 24, 3, 3), atol=1e-5, rtol=0)
    pose.requires_grad_(True)
    skel(betas, pose)[0].square().sum().backward()
    assert torch.isfinite(pose.grad).all() and pose.grad.abs().sum() > 0
