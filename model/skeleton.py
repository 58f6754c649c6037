"""The body model reduced to what training needs: 24 joint rotations and the 25 HMMR keypoints.

Training evaluates the body model several times per step (present frame, the past/future heads, the
hallucinated strips) for B x T bodies. Skinning every vertex (6,890 for SMPL, 13,718 for the open
model) only to read 25 keypoints off them is most of that cost, so :class:`KeypointSkeleton` skins
only the vertices the keypoint regressor reads. It is exact: the same linear blend skinning as
``smplx.lbs.lbs`` (shape blend shapes, the joint regressor on the shaped template, pose blend
shapes, rigid transforms along the kinematic tree), restricted to those vertices.
"""

from __future__ import annotations

import torch
from smplx.lbs import batch_rigid_transform, batch_rodrigues
from torch import nn


class KeypointSkeleton(nn.Module):
    """Keypoints of an SMPL-format body (``smplx.SMPL``/``SMPLLayer``: the licensed SMPL or the open
    default).

    Keypoints are ``vertex_weights (K, V) @ posed vertices + joint_weights (K, 24) @ posed joints``
    (the map of :class:`model.body.keypoints.KeypointMap`). Forward: ``betas`` ``(N, 10)``, ``pose``
    ``(N, 72)`` axis-angle (global rotation first) -> ``keypoints`` ``(N, K, 3)`` metres in the body
    frame and ``rotmats`` ``(N, 24, 3, 3)``.
    """

    def __init__(self, body: nn.Module, vertex_weights: torch.Tensor, joint_weights: torch.Tensor | None = None):
        super().__init__()
        reg = torch.as_tensor(vertex_weights, dtype=torch.float32)
        support = (reg.abs().sum(0) > 0).nonzero().flatten()
        self.register_buffer("regressor", reg[:, support])  # (K, S)
        jw = torch.zeros(reg.shape[0], 24) if joint_weights is None else torch.as_tensor(joint_weights, dtype=torch.float32)
        self.register_buffer("joint_weights", jw)  # (K, 24)
        v = body.v_template.float()  # (V, 3)
        shapedirs = body.shapedirs.float()[..., :10]  # (V, 3, 10)
        j_reg = body.J_regressor.float()  # (24, V)
        self.register_buffer("v_template", v[support])  # (S, 3)
        self.register_buffer("shapedirs", shapedirs[support])  # (S, 3, 10)
        self.register_buffer("j_template", j_reg @ v)  # (24, 3): joints of the shaped template are
        self.register_buffer("j_shapedirs", torch.einsum("jv,vcb->jcb", j_reg, shapedirs))  # linear in betas
        posedirs = body.posedirs.float().reshape(-1, v.shape[0], 3)  # (207, V, 3)
        self.register_buffer("posedirs", posedirs[:, support])  # (207, S, 3)
        self.register_buffer("weights", body.lbs_weights.float()[support])  # (S, 24)
        self.register_buffer("parents", body.parents.clone())

    def forward(self, betas: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = betas.shape[0]
        v_shaped = self.v_template + torch.einsum("scb,nb->nsc", self.shapedirs, betas)
        joints = self.j_template + torch.einsum("jcb,nb->njc", self.j_shapedirs, betas)
        rotmats = batch_rodrigues(pose.reshape(-1, 3)).reshape(n, 24, 3, 3)
        eye = torch.eye(3, dtype=pose.dtype, device=pose.device)
        pose_feature = (rotmats[:, 1:] - eye).reshape(n, -1)  # (N, 207)
        v_posed = v_shaped + torch.einsum("np,psc->nsc", pose_feature, self.posedirs)
        posed_joints, transforms = batch_rigid_transform(rotmats, joints, self.parents, dtype=pose.dtype)
        t = torch.einsum("sj,njab->nsab", self.weights, transforms)  # (N, S, 4, 4)
        v_h = torch.cat([v_posed, torch.ones_like(v_posed[..., :1])], -1)
        verts = torch.einsum("nsab,nsb->nsa", t, v_h)[..., :3]
        kps = torch.einsum("ks,nsc->nkc", self.regressor, verts) + torch.einsum("kj,njc->nkc", self.joint_weights, posed_joints)
        return kps, rotmats

    @classmethod
    def from_body_model(cls, body) -> KeypointSkeleton:
        """The skeleton of a :class:`model.body.layer.BodyModel` (its smplx layer and keypoint map)."""
        return cls(body.layer, body.kp_vertex_weights, body.kp_joint_weights)
