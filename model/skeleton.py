"""The body model reduced to what training needs: 24 joint rotations and the 25 HMMR keypoints.

Training evaluates the body model several times per step (present frame, the past/future heads, the
hallucinated strips) for B x T bodies. Skinning every vertex (6,890 for SMPL, 13,718 for the open
model) only to read 25 keypoints off them is most of that cost. Linear blend skinning is linear in
the vertices, so a keypoint that is a fixed blend of vertices is the same blend of skinned points:

    kp_k = sum_s r_ks sum_j w_sj T_j [v_s(beta, theta); 1] = sum_j T_j sum_s r_ks w_sj [v_s; 1]

and ``sum_s r_ks w_sj v_s`` is linear in the shape coefficients and in the pose-blend features. So
:class:`KeypointSkeleton` precomputes, per keypoint and joint, that blended rest point (its template,
shape and pose-blend parts) and at run time applies the 24 joint transforms to 25 x 24 points. It is
exact: the same computation as ``smplx.lbs.lbs`` followed by the keypoint regressor, reordered.
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
        reg = torch.as_tensor(vertex_weights, dtype=torch.float64)
        k = reg.shape[0]
        jw = torch.zeros(k, 24) if joint_weights is None else torch.as_tensor(joint_weights, dtype=torch.float32)
        v = body.v_template.double()  # (V, 3)
        shapedirs = body.shapedirs.double()[..., :10]  # (V, 3, 10)
        j_reg = body.J_regressor.double()  # (24, V)
        rw = torch.einsum("kv,vj->kjv", reg, body.lbs_weights.double())  # (K, 24, V): r_ks * w_sj
        posedirs = body.posedirs.double().reshape(-1, v.shape[0], 3)  # (207, V, 3)
        self.register_buffer("joint_weights", jw)
        self.register_buffer("j_template", (j_reg @ v).float())  # (24, 3): joints of the shaped template
        self.register_buffer("j_shapedirs", torch.einsum("jv,vcb->jcb", j_reg, shapedirs).float())  # are linear in betas
        self.register_buffer("weight", rw.sum(-1).float())  # (K, 24): blended skinning weight (the homogeneous 1)
        self.register_buffer("rest", torch.einsum("kjv,vc->kjc", rw, v).float())  # (K, 24, 3)
        self.register_buffer("shape", torch.einsum("kjv,vcb->kjcb", rw, shapedirs).float())  # (K, 24, 3, 10)
        has_pose_blend = bool(posedirs.abs().max() > 0)  # the open model has none
        self.register_buffer("pose_blend", torch.einsum("kjv,pvc->kjpc", rw, posedirs).float() if has_pose_blend else None)  # (K, 24, 207, 3)
        self.register_buffer("parents", body.parents.clone())

    def forward(self, betas: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rotmats = batch_rodrigues(pose.reshape(-1, 3)).reshape(betas.shape[0], 24, 3, 3)
        return self.posed(betas, rotmats)[0], rotmats

    def rigid(self, betas: torch.Tensor, rotmats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The skeleton alone (no keypoints): posed joints ``(N, 24, 3)`` metres and each joint's
        world transform ``(N, 24, 4, 4)`` (its ``[:3, :3]`` is the joint's rotation in the body frame)."""
        joints = self.j_template + torch.einsum("jcb,nb->njc", self.j_shapedirs, betas)
        return batch_rigid_transform(rotmats, joints, self.parents, dtype=rotmats.dtype)

    def posed(self, betas: torch.Tensor, rotmats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``betas`` ``(N, 10)``, joint rotations ``rotmats`` ``(N, 24, 3, 3)`` (parent-relative) ->
        ``keypoints`` ``(N, K, 3)`` and the 24 posed SMPL joints ``(N, 24, 3)``, metres in the body frame."""
        n = betas.shape[0]
        posed_joints, transforms = self.rigid(betas, rotmats)
        points = self.rest + torch.einsum("kjcb,nb->nkjc", self.shape, betas)  # (N, K, 24, 3)
        if self.pose_blend is not None:
            eye = torch.eye(3, dtype=rotmats.dtype, device=rotmats.device)
            points = points + torch.einsum("kjpc,np->nkjc", self.pose_blend, (rotmats[:, 1:] - eye).reshape(n, -1))
        rot, trans = transforms[:, :, :3, :3], transforms[:, :, :3, 3]
        kps = torch.einsum("njab,nkjb->nka", rot, points) + torch.einsum("kj,nja->nka", self.weight, trans)
        return kps + torch.einsum("kj,njc->nkc", self.joint_weights, posed_joints), posed_joints

    @classmethod
    def from_body_model(cls, body) -> KeypointSkeleton:
        """The skeleton of a :class:`model.body.layer.BodyModel` (its smplx layer and keypoint map)."""
        return cls(body.layer, body.kp_vertex_weights, body.kp_joint_weights)
