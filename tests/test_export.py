"""Export of a track's motion to BVH and glTF, read back and checked against the body model itself.

The motion is real human motion: the CMU walk 02_01 (tests/data/cmu_bvh), its joints' local
rotations given to the SMPL joints of the same name (a rough retarget, but every rotation is a real
one, large at the hips, knees and shoulders), at 30 fps, turned into HMMR's camera frame (y down) as
``hmmr predict`` writes it, with a shape away from the mean. Each file is read back by an independent
reader (the warehouse's BVH reader, pygltflib, trimesh), and its forward kinematics / skinning at
chosen frames is compared with the open body model's posed joints and vertices.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pygltflib
import pytest
import torch
import trimesh
from scipy.spatial.transform import Rotation

from model.body import SMPL_JOINTS
from model.export import CAMERA_TO_Y_UP, export_motion, skinned_motion
from warehouse.importers.bvh import read_bvh, read_bvh_file
from warehouse.mocap.motion import resample

from .test_body_model import body_home, open_body  # noqa: F401  (the session's built open body model)

DATA = Path(__file__).parent / "data" / "cmu_bvh"
CMU_FOR_SMPL = {  # SMPL joint -> the CMU joint whose local rotation it takes
    "pelvis": "Hips", "left_hip": "LeftUpLeg", "right_hip": "RightUpLeg", "spine1": "LowerBack", "left_knee": "LeftLeg",
    "right_knee": "RightLeg", "spine2": "Spine", "left_ankle": "LeftFoot", "right_ankle": "RightFoot", "spine3": "Spine1",
    "left_foot": "LeftToeBase", "right_foot": "RightToeBase", "neck": "Neck", "left_collar": "LeftShoulder",
    "right_collar": "RightShoulder", "head": "Head", "left_shoulder": "LeftArm", "right_shoulder": "RightArm",
    "left_elbow": "LeftForeArm", "right_elbow": "RightForeArm", "left_wrist": "LeftHand", "right_wrist": "RightHand",
    "left_hand": "LeftFingerBase", "right_hand": "RightFingerBase",
}
FPS = 30.0
SHAPE = np.array([1.2, -0.8, 0.5, 0.0, 0.3, 0.0, -0.4, 0.0, 0.2, 0.0])
FRAMES = (0, 23, 61)  # checked frames: first, mid-stride, late


@pytest.fixture(scope="module")
def walk() -> dict:
    return cmu_walk()


def cmu_walk() -> dict:
    """CMU 02_01 at 30 fps as SMPL parameters in HMMR's camera frame: pose (N, 72), trans (N, 3)."""
    cmu = resample(read_bvh(DATA / "02_01.bvh"), FPS)
    local = Rotation.from_quat(cmu.rotations[:, [cmu.names.index(CMU_FOR_SMPL[j]) for j in SMPL_JOINTS]].reshape(-1, 4))
    pose = local.as_rotvec().reshape(cmu.n_frames, 72)
    to_camera = Rotation.from_matrix(CAMERA_TO_Y_UP)  # its own inverse
    pose[:, :3] = (to_camera * Rotation.from_rotvec(pose[:, :3])).as_rotvec()
    trans = (cmu.root_positions - cmu.root_positions[0]) @ CAMERA_TO_Y_UP.T
    return {"pose": pose, "trans": trans}


def posed(body, walk) -> tuple[np.ndarray, np.ndarray]:
    """The body model's joints (N, 24, 3) and vertices (N, V, 3) for the walk, turned Y-up, metres."""
    n = len(walk["pose"])
    with torch.no_grad():
        out = body(torch.as_tensor(walk["pose"], dtype=torch.float32), torch.as_tensor(np.tile(SHAPE, (n, 1)), dtype=torch.float32),
                   torch.as_tensor(walk["trans"], dtype=torch.float32))
    return out.joints.double().numpy() @ CAMERA_TO_Y_UP.T, out.vertices.double().numpy() @ CAMERA_TO_Y_UP.T


def test_the_walk_moves(walk):
    """The input is not near the rest pose (so a wrong rotation order or convention would show)."""
    angles = np.degrees(np.linalg.norm(walk["pose"].reshape(len(walk["pose"]), 24, 3), axis=-1))
    assert len(walk["pose"]) == 86  # 343 frames at 120 fps (T-pose dropped) -> 2.83 s at 30 fps
    assert angles[:, SMPL_JOINTS.index("left_knee")].max() > 45 and angles[:, SMPL_JOINTS.index("right_shoulder")].max() > 45
    assert np.ptp(walk["trans"][:, 2]) > 1.0  # walks more than a metre


@pytest.mark.parametrize("units", ["m", "cm"])
def test_bvh_reads_back_with_the_body_models_joints(open_body, walk, tmp_path, units):  # noqa: F811
    path = export_motion(tmp_path / "walk.bvh", walk["pose"], SHAPE, walk["trans"], FPS, open_body, units=units)
    read = read_bvh_file(path)
    motion = read.motion
    assert sorted(motion.names) == sorted(SMPL_JOINTS) and motion.n_joints == 24
    assert motion.n_frames == len(walk["pose"]) and motion.fps == FPS
    assert read.scale == {"m": 1.0, "cm": 0.01}[units]  # the reader tells the unit from the rest height
    joints, _ = posed(open_body, walk)
    fk = motion.positions()[:, [motion.names.index(j) for j in SMPL_JOINTS]]
    err_mm = 1000 * np.linalg.norm(fk - joints, axis=-1)
    assert err_mm[list(FRAMES)].max() < 0.05 and err_mm.max() < 0.05, f"BVH forward kinematics off by {err_mm.max():.3f} mm"
    head = SMPL_JOINTS.index("head")
    assert joints[FRAMES[1], head, 1] - joints[FRAMES[1]].min(0)[1] > 1.2  # upright (Y up) after the camera-frame turn


def _accessor(doc: pygltflib.GLTF2, index: int) -> np.ndarray:
    acc = doc.accessors[index]
    view = doc.bufferViews[acc.bufferView]
    dtype = {pygltflib.FLOAT: np.float32, pygltflib.UNSIGNED_BYTE: np.uint8, pygltflib.UNSIGNED_INT: np.uint32}[acc.componentType]
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}[acc.type]
    return np.frombuffer(doc.binary_blob(), dtype, acc.count * width, view.byteOffset + (acc.byteOffset or 0)).reshape(acc.count, width)


def _skin_frame(doc: pygltflib.GLTF2, frame: int) -> np.ndarray:
    """Vertices ``(V, 3)`` of the glTF's skinned mesh at animation sample ``frame``, by linear blend
    skinning computed here from the file's nodes, animation, skin and vertex attributes."""
    local_t = {i: np.array(n.translation or [0.0, 0.0, 0.0]) for i, n in enumerate(doc.nodes)}
    local_r = {i: np.eye(3) for i in range(len(doc.nodes))}
    anim = doc.animations[0]
    for channel in anim.channels:
        value = _accessor(doc, anim.samplers[channel.sampler].output)[frame].astype(np.float64)
        if channel.target.path == "rotation":
            local_r[channel.target.node] = Rotation.from_quat(value).as_matrix()
        else:
            local_t[channel.target.node] = value
    parent = {c: i for i, n in enumerate(doc.nodes) for c in (n.children or [])}
    world: dict[int, np.ndarray] = {}

    def world_of(i: int) -> np.ndarray:
        if i not in world:
            m = np.eye(4)
            m[:3, :3], m[:3, 3] = local_r[i], local_t[i]
            world[i] = world_of(parent[i]) @ m if i in parent else m
        return world[i]

    skin = doc.skins[0]
    inverse_bind = _accessor(doc, skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)  # column-major
    skinning = np.stack([world_of(j) @ inverse_bind[k] for k, j in enumerate(skin.joints)])
    prim = doc.meshes[0].primitives[0]
    rest = _accessor(doc, prim.attributes.POSITION).astype(np.float64)
    weights = _accessor(doc, prim.attributes.WEIGHTS_0).astype(np.float64)
    joints = _accessor(doc, prim.attributes.JOINTS_0).astype(np.int64)
    homogeneous = np.c_[rest, np.ones(len(rest))]
    return np.einsum("vk,vkab,vb->va", weights, skinning[joints], homogeneous)[:, :3]


def test_glb_reads_back_as_the_body_models_skinned_mesh(open_body, walk, tmp_path):  # noqa: F811
    path = export_motion(tmp_path / "walk.glb", walk["pose"], SHAPE, walk["trans"], FPS, open_body)
    doc = pygltflib.GLTF2().load_binary(str(path))
    n, n_vertices, n_faces = len(walk["pose"]), open_body.n_vertices, len(open_body.faces)
    prim = doc.meshes[0].primitives[0]
    counts = {name: doc.accessors[getattr(prim.attributes, name)].count for name in ("POSITION", "NORMAL", "JOINTS_0", "WEIGHTS_0")}
    assert counts == dict.fromkeys(counts, n_vertices) and doc.accessors[prim.indices].count == 3 * n_faces
    skin = doc.skins[0]
    assert [doc.nodes[j].name for j in skin.joints] == list(SMPL_JOINTS) and doc.accessors[skin.inverseBindMatrices].count == 24
    anim = doc.animations[0]
    assert len(anim.channels) == 25 and {c.target.path for c in anim.channels} == {"rotation", "translation"}
    times = _accessor(doc, anim.samplers[0].input)[:, 0]
    assert len(times) == n and all(doc.accessors[s.output].count == n for s in anim.samplers)
    assert times[-1] == pytest.approx((n - 1) / FPS) and doc.accessors[anim.samplers[0].input].max == pytest.approx([(n - 1) / FPS])

    weights = open_body.layer.lbs_weights.numpy()
    few = (weights > 0).sum(1) <= 4  # vertices whose weights the file keeps whole
    _, vertices = posed(open_body, walk)
    for frame in FRAMES:
        err_mm = 1000 * np.linalg.norm(_skin_frame(doc, frame) - vertices[frame], axis=-1)
        assert err_mm[few].max() < 0.05, f"frame {frame}: skinned vertices off by {err_mm[few].max():.3f} mm"
        assert err_mm.max() < 20, f"frame {frame}: top-4 weights move a vertex by {err_mm.max():.1f} mm"

    mesh = trimesh.load(path, force="mesh")  # a second reader: the static mesh at rest
    assert mesh.vertices.shape == (n_vertices, 3) and mesh.faces.shape == (n_faces, 3)
    rest = skinned_motion(walk["pose"], SHAPE, walk["trans"], FPS, open_body).vertices
    assert np.abs(np.asarray(mesh.vertices) - rest).max() < 1e-5


def test_unknown_format_is_refused(open_body, walk, tmp_path):  # noqa: F811
    with pytest.raises(ValueError, match=r"walk\.fbx: unknown export format '\.fbx'"):
        export_motion(tmp_path / "walk.fbx", walk["pose"], SHAPE, walk["trans"], FPS, open_body)
    with pytest.raises(ValueError, match=r"pose must be \(N, 72\)"):
        export_motion(tmp_path / "walk.bvh", walk["pose"][:, :69], SHAPE, None, FPS, open_body)
