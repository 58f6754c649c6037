"""Fit the body model (SMPL or the open default) to motion-capture joint positions.

One sequence is fitted at once, every frame in one batch: per-frame pose (24 joint rotations) and
translation, one shape (10 betas) for the whole sequence, and a small constant *placement
correction* per corresponded joint. Adam minimises

* the weighted squared distance between each mocap joint and its body joint (:data:`CMU_TO_SMPL`),
  the body joint moved by its placement correction;
* temporal smoothness: the squared second difference (acceleration) of every joint rotation matrix
  and of the translation, so joints the positions do not pin down (twists, hands, feet, head) do not
  jitter from frame to frame;
* priors: the squared rotation angle of each local joint (the rest pose where nothing says otherwise),
  the squared betas, and the squared placement corrections.

**Why placement corrections.** A mocap skeleton's joints are not SMPL's: CMU's hip joints sit ~0.10 m
below and ~0.09 m beside its root, and its shoulders only ~0.3 m above the root, where SMPL's shoulder
joints are ~0.45 m above the pelvis (the cgspeed BVH conversion attaches the clavicles at the top of
the upper back, one thorax segment low). Fitting those points as they are bends the spine and shrugs
the shoulders to reach them. Each correction is a constant offset of the body joint in the frame of
its SMPL parent (a per-sequence change of that bone's rest offset), so it can absorb a fixed placement
difference but no motion. Limb joints (knees, ankles, elbows, wrists) get no correction: their bone
lengths are the shape's to explain. :class:`JointFit` reports the error with and without corrections.

Units: metres, y-up world (the mocap's); the body's translation is added after posing
(``world = body(pose, betas) + trans``), the convention of ``BodyModel(transl=...)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.transform import Rotation
from smplx.lbs import batch_rodrigues

from model.body.open_model import SMPL_JOINTS, SMPL_PARENTS
from model.skeleton import KeypointSkeleton


@dataclass(frozen=True)
class Correspondence:
    """One mocap joint and the SMPL joint it is fitted to. ``names``: the joint's name in each
    skeleton naming it knows (first match wins); ``weight`` of its squared error; ``corrected``: the
    body joint gets a placement correction (see the module docstring)."""

    smpl: str
    names: tuple[str, ...]
    weight: float
    corrected: bool


def _sided(side: str, smpl: str, mb: str, mx: str, weight: float, corrected: bool) -> Correspondence:
    lr = {"L": ("left", "Left", "L"), "R": ("right", "Right", "R")}[side]
    fill = lambda s: s.format(side=lr[1], s=lr[2])  # noqa: E731
    return Correspondence(f"{lr[0]}_{smpl}", (fill(mb), fill(mx)), weight, corrected)


#: CMU-31 joint -> SMPL-24 joint, for both cgspeed releases: (MotionBuilder-friendly name,
#: 3dsMax-friendly name). CMU joints left out sit at the same point as another CMU joint (zero
#: offsets: LHipJoint/RHipJoint and LowerBack at Hips; Neck/lowerneck and the collars at
#: Spine1/Chest2; LeftFingerBase/lhand at the wrist) or have no SMPL counterpart (the thumbs).
CMU_TO_SMPL: tuple[Correspondence, ...] = (
    Correspondence("pelvis", ("Hips",), 0.5, True),
    Correspondence("spine1", ("Spine", "Chest"), 0.5, True),
    Correspondence("spine3", ("Spine1", "Chest2"), 0.5, True),
    Correspondence("neck", ("Neck1", "Neck"), 0.5, True),
    Correspondence("head", ("Head",), 1.0, True),
    *(c for side in "LR" for c in (
        _sided(side, "hip", "{side}UpLeg", "{side}Hip", 1.0, True),
        _sided(side, "knee", "{side}Leg", "{side}Knee", 1.0, False),
        _sided(side, "ankle", "{side}Foot", "{side}Ankle", 1.0, False),
        _sided(side, "foot", "{side}ToeBase", "{side}Toe", 0.5, True),
        _sided(side, "shoulder", "{side}Arm", "{side}Shoulder", 1.0, True),
        _sided(side, "elbow", "{side}ForeArm", "{side}Elbow", 1.0, False),
        _sided(side, "wrist", "{side}Hand", "{side}Wrist", 1.0, False),
        _sided(side, "hand", "{side}HandIndex1", "{s}Fingers", 0.2, True),
    )),
)
#: The joints the torso's initial rotation is solved from (closed form, per frame).
_TORSO = ("left_hip", "right_hip", "left_shoulder", "right_shoulder", "spine3", "pelvis")


class MocapSkeletonError(ValueError):
    """The mocap skeleton lacks joints the fit needs; the message names them."""


@dataclass(frozen=True)
class FitConfig:
    """Iterations and weights of the fit (weights multiply mean squared metres, or squared radians)."""

    iterations: int = 240
    torso_iterations: int = 60  #: first stage: global rotation, translation, shape, corrections on the torso
    lr: float = 0.1
    smooth: float = 0.1  #: acceleration of rotation matrices and translation (per frame^2)
    pose_prior: float = 1e-4  #: squared local joint angles (radians^2)
    shape_prior: float = 1e-4  #: squared betas
    correction_prior: float = 1e-2  #: squared placement corrections (m^2)


@dataclass(frozen=True)
class JointFit:
    """A fitted sequence of F frames.

    ``pose (F, 72)`` axis-angle (global rotation first, SMPL order), ``betas (10,)``, ``trans (F, 3)``
    metres; ``joints (F, 24, 3)`` and ``keypoints (F, 25, 3)`` (HMMR-25) of the fitted body, world
    metres; ``corrections (C, 3)`` metres, per corresponded joint in its SMPL parent's frame (zero for
    uncorrected joints); ``joint_error_mm (F, C)`` distance between each mocap joint and its corrected
    body joint, ``raw_error_mm (F, C)`` the same without corrections; ``matched``: the
    correspondences used, in column order.
    """

    pose: np.ndarray
    betas: np.ndarray
    trans: np.ndarray
    joints: np.ndarray
    keypoints: np.ndarray
    corrections: np.ndarray
    joint_error_mm: np.ndarray
    raw_error_mm: np.ndarray
    matched: tuple[Correspondence, ...]
    iterations: int
    seconds: float

    @property
    def mean_error_mm(self) -> float:
        return float(self.joint_error_mm.mean())

    @property
    def max_error_mm(self) -> float:
        return float(self.joint_error_mm.max())

    def per_joint_mm(self) -> dict[str, float]:
        """Mean error per SMPL joint name, mm."""
        return {c.smpl: float(e) for c, e in zip(self.matched, self.joint_error_mm.mean(0))}


def match_joints(names: tuple[str, ...] | list[str]) -> tuple[list[Correspondence], list[int]]:
    """The correspondences a mocap skeleton with joint ``names`` supports, and each one's joint index.
    Raises :class:`MocapSkeletonError` when one is missing (not a CMU skeleton)."""
    index = {n: i for i, n in enumerate(names)}
    matched, cols, missing = [], [], []
    for c in CMU_TO_SMPL:
        hit = next((index[n] for n in c.names if n in index), None)
        if hit is None:
            missing.append("/".join(c.names))
        else:
            matched.append(c)
            cols.append(hit)
    if missing:
        raise MocapSkeletonError(f"the mocap skeleton has no joint {', '.join(missing)}: the fit knows the CMU skeletons "
                                 f"(cgspeed MotionBuilder- and 3dsMax-friendly names); its joints are {', '.join(names)}")
    return matched, cols


def _kabsch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Rotations ``(F, 3, 3)`` best mapping the centred points ``src (K, 3)`` onto ``dst (F, K, 3)``."""
    s = src - src.mean(0)
    d = dst - dst.mean(1, keepdims=True)
    u, _, vt = np.linalg.svd(np.einsum("kc,fkd->fcd", s, d))
    sign = np.sign(np.linalg.det(np.einsum("fab,fbc->fac", u, vt)))
    fix = np.ones((len(dst), 3))
    fix[:, 2] = sign
    return np.einsum("fab,fb,fbc->fca", u, fix, vt)  # R = V diag U^T


def fit_joints(skeleton: KeypointSkeleton, positions: np.ndarray, names: tuple[str, ...] | list[str],
               cfg: FitConfig = FitConfig(), *, device: torch.device | str = "cpu") -> JointFit:
    """Fit the body of ``skeleton`` (:meth:`KeypointSkeleton.from_body_model`) to mocap joint
    ``positions (F, J, 3)`` (metres, y-up, the skeleton's ``names``). See the module docstring.

    On CPU the fit runs on one intra-op thread: its tensors are small (F x 24 rotations), so more
    threads only add synchronisation (measured: 11x slower with 2 threads on a shared 2-core machine).
    """
    threads = torch.get_num_threads()
    if torch.device(device).type == "cpu":
        torch.set_num_threads(1)
    try:
        return _fit(skeleton, positions, names, cfg, torch.device(device))
    finally:
        torch.set_num_threads(threads)


def _fit(skeleton: KeypointSkeleton, positions: np.ndarray, names, cfg: FitConfig, device: torch.device) -> JointFit:
    t0 = time.perf_counter()
    matched, cols = match_joints(names)
    smpl_idx = torch.as_tensor([SMPL_JOINTS.index(c.smpl) for c in matched], device=device)
    # a correction lives in the frame of the joint's SMPL parent (the pelvis: its own)
    parent_idx = torch.as_tensor([max(SMPL_PARENTS[SMPL_JOINTS.index(c.smpl)], 0) for c in matched], device=device)
    weights = torch.as_tensor([c.weight for c in matched], dtype=torch.float32, device=device)
    corrected = torch.as_tensor([c.corrected for c in matched], dtype=torch.float32, device=device)[:, None]
    target = torch.as_tensor(np.asarray(positions, np.float64)[:, cols], dtype=torch.float32, device=device)  # (F, C, 3)
    n = target.shape[0]
    skeleton = skeleton.to(device)

    # initial global rotation per frame: the rest body's torso joints onto the mocap's (Kabsch)
    with torch.no_grad():
        _, rest_joints = skeleton.posed(torch.zeros(1, 10, device=device), torch.eye(3, device=device).expand(1, 24, 3, 3))
    torso = [i for i, c in enumerate(matched) if c.smpl in _TORSO]
    rest = rest_joints[0, smpl_idx[torso]].cpu().numpy().astype(np.float64)
    r0 = torch.as_tensor(_kabsch(rest, target[:, torso].cpu().numpy().astype(np.float64)), dtype=torch.float32, device=device)
    # the body rotates about its root joint j0: world = R0 (x - j0) + j0 + trans; centroids coincide
    j0 = rest_joints[0, 0]
    centroid = torch.as_tensor(rest.mean(0), dtype=torch.float32, device=device)
    trans0 = target[:, torso].mean(1) - torch.einsum("fab,b->fa", r0, centroid - j0) - j0

    glob = torch.zeros(n, 3, device=device, requires_grad=True)  # global rotation = R0 exp(glob)
    local = torch.zeros(n, 23, 3, device=device, requires_grad=True)
    trans = trans0.clone().requires_grad_(True)
    betas = torch.zeros(1, 10, device=device, requires_grad=True)
    corr = torch.zeros(len(matched), 3, device=device, requires_grad=True)

    def rotations() -> torch.Tensor:
        g = r0 @ batch_rodrigues(glob)
        return torch.cat([g[:, None], batch_rodrigues(local.reshape(-1, 3)).reshape(n, 23, 3, 3)], 1)

    def body(rotmats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Joints (world) and the corresponded body points with their corrections."""
        joints, transforms = skeleton.rigid(betas.expand(n, -1), rotmats)
        joints = joints + trans[:, None]
        offset = torch.einsum("fcab,cb->fca", transforms[:, parent_idx, :3, :3], corr * corrected)
        return joints, joints[:, smpl_idx] + offset

    torso_weights = weights * torch.as_tensor([c.smpl in _TORSO for c in matched], dtype=torch.float32, device=device)

    def loss(w: torch.Tensor) -> torch.Tensor:
        rotmats = rotations()
        _, points = body(rotmats)
        sq = ((points - target) ** 2).sum(-1)  # (F, C)
        data = (sq * w).sum(1).mean() / w.sum()
        acc = rotmats[2:] - 2 * rotmats[1:-1] + rotmats[:-2]
        acc_t = trans[2:] - 2 * trans[1:-1] + trans[:-2]
        smooth = (acc ** 2).sum((-1, -2)).mean() + (acc_t ** 2).sum(-1).mean() if n > 2 else data * 0
        angles = (local ** 2).sum(-1).mean()
        return data + cfg.smooth * smooth + cfg.pose_prior * angles + cfg.shape_prior * (betas ** 2).mean() \
            + cfg.correction_prior * (corr ** 2).sum(-1).mean()

    iterations = 0
    for w, params, steps in ((torso_weights, [glob, trans, betas, corr], cfg.torso_iterations),
                             (weights, [glob, local, trans, betas, corr], cfg.iterations)):
        opt = torch.optim.Adam(params, lr=cfg.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1), eta_min=cfg.lr * 0.05)
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            value = loss(w)
            value.backward()
            opt.step()
            sched.step()
            iterations += 1

    with torch.no_grad():
        rotmats = rotations()
        joints, points = body(rotmats)
        kps = skeleton.posed(betas.expand(n, -1), rotmats)[0] + trans[:, None]
        err = (points - target).norm(dim=-1) * 1000
        raw = (joints[:, smpl_idx] - target).norm(dim=-1) * 1000
        pose = Rotation.from_matrix(rotmats.reshape(-1, 3, 3).double().cpu().numpy()).as_rotvec().reshape(n, 72)
    return JointFit(
        pose=pose.astype(np.float32), betas=betas[0].detach().cpu().numpy(), trans=trans.detach().cpu().numpy(),
        joints=joints.cpu().numpy(), keypoints=kps.cpu().numpy(), corrections=(corr * corrected).detach().cpu().numpy(),
        joint_error_mm=err.cpu().numpy(), raw_error_mm=raw.cpu().numpy(), matched=tuple(matched),
        iterations=iterations, seconds=time.perf_counter() - t0,
    )

