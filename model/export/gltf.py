"""Write a :class:`~model.export.motion.SkinnedMotion` as binary glTF 2.0 (``.glb``): an animated skinned mesh.

What the file holds (metres, Y up, the body facing +Z at rest):

* one node per SMPL joint (nodes 0-23, in SMPL order, named as SMPL names them), each translated by
  its rest offset from its parent, and a mesh node (24) with the body mesh at rest for the track's
  shape (positions, normals, triangles) and a skin over the 24 joints whose inverse bind matrices undo
  the rest joints' positions (the rest pose has identity rotations);
* per vertex the four largest skinning weights (``JOINTS_0``, ``WEIGHTS_0``) renormalised to sum to 1
  (SMPL-format weights can spread over more than four joints; the others are dropped);
* one animation, "motion", with a rotation channel (unit quaternions x, y, z, w) per joint and a
  translation channel for the root, sampled at frame / fps seconds with LINEAR interpolation.

glTF skinning is plain linear blend skinning: SMPL's pose blend shapes are not in the file (the open
body model has none, so for it the file reproduces the body model's mesh up to the weight truncation).

Written with ``pygltflib`` (trimesh's glTF export has no skins or animations).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pygltflib as gl
import trimesh
from scipy.spatial.transform import Rotation

from model.export.motion import SkinnedMotion

INFLUENCES = 4  # joints per vertex in JOINTS_0 / WEIGHTS_0


def top_weights(weights: np.ndarray, k: int = INFLUENCES) -> tuple[np.ndarray, np.ndarray]:
    """Each vertex's ``k`` largest weights ``(V, k)`` float32 renormalised to sum to 1, and their joints
    ``(V, k)`` uint8 (largest first; joint 0 where the weight is 0, as glTF asks)."""
    joints = np.argsort(-weights, axis=1, kind="stable")[:, :k]
    w = np.take_along_axis(weights, joints, axis=1)
    w = (w / w.sum(1, keepdims=True)).astype(np.float32)
    return w, np.where(w > 0, joints, 0).astype(np.uint8)


def continuous_quaternions(quats: np.ndarray) -> np.ndarray:
    """``(N, J, 4)`` x, y, z, w quaternions with signs chosen so that no joint's flips between consecutive
    frames (so interpolating between samples takes the short way)."""
    q = Rotation.from_quat(quats.reshape(-1, 4)).as_quat().reshape(quats.shape)  # normalised
    if len(q) > 1:
        flips = np.cumprod(np.where((q[1:] * q[:-1]).sum(-1) < 0, -1.0, 1.0), axis=0)
        q[1:] *= flips[..., None]
    return q


class _Blob:
    """The binary buffer: each array gets a 4-byte-aligned buffer view and an accessor."""

    def __init__(self, doc: gl.GLTF2):
        self.doc, self.data = doc, bytearray()

    def add(self, array: np.ndarray, kind: str, component: int, target: int | None = None, bounds: bool = False) -> int:
        raw = np.ascontiguousarray(array).tobytes()
        self.data += b"\0" * (-len(self.data) % 4)
        self.doc.bufferViews.append(gl.BufferView(buffer=0, byteOffset=len(self.data), byteLength=len(raw), target=target))
        self.data += raw
        flat = array.reshape(len(array), -1)
        self.doc.accessors.append(gl.Accessor(
            bufferView=len(self.doc.bufferViews) - 1, componentType=component, count=len(array), type=kind,
            min=flat.min(0).tolist() if bounds else None, max=flat.max(0).tolist() if bounds else None))
        return len(self.doc.accessors) - 1


def gltf_document(skinned: SkinnedMotion) -> gl.GLTF2:
    """The glTF document of ``skinned`` with its binary blob set (see the module docstring)."""
    motion = skinned.motion
    doc = gl.GLTF2(asset=gl.Asset(generator="hmmr", version="2.0"), scene=0)
    blob = _Blob(doc)
    offsets = motion.offsets
    children: dict[int, list[int]] = {}
    for j, p in enumerate(int(p) for p in motion.parents):
        children.setdefault(p, []).append(j)
    doc.nodes = [gl.Node(name=name, translation=offsets[j].tolist(), children=children.get(j, []))
                 for j, name in enumerate(motion.names)]
    root = children[-1][0]

    vertices = skinned.vertices.astype(np.float32)
    normals = trimesh.Trimesh(skinned.vertices, skinned.faces, process=False).vertex_normals.astype(np.float32)
    weights, joints = top_weights(skinned.weights)
    attributes = gl.Attributes(
        POSITION=blob.add(vertices, gl.VEC3, gl.FLOAT, gl.ARRAY_BUFFER, bounds=True),
        NORMAL=blob.add(normals, gl.VEC3, gl.FLOAT, gl.ARRAY_BUFFER),
        JOINTS_0=blob.add(joints, gl.VEC4, gl.UNSIGNED_BYTE, gl.ARRAY_BUFFER),
        WEIGHTS_0=blob.add(weights, gl.VEC4, gl.FLOAT, gl.ARRAY_BUFFER),
    )
    indices = blob.add(skinned.faces.astype(np.uint32).reshape(-1), gl.SCALAR, gl.UNSIGNED_INT, gl.ELEMENT_ARRAY_BUFFER)
    doc.materials = [gl.Material(name="body", pbrMetallicRoughness=gl.PbrMetallicRoughness(
        baseColorFactor=[0.65, 0.74, 0.86, 1.0], metallicFactor=0.0, roughnessFactor=0.7), doubleSided=True)]
    doc.meshes = [gl.Mesh(name="body", primitives=[gl.Primitive(attributes=attributes, indices=indices, material=0)])]
    inverse_bind = np.tile(np.eye(4, dtype=np.float32), (len(motion.names), 1, 1))
    inverse_bind[:, :3, 3] = -skinned.rest_joints()
    ibm = blob.add(inverse_bind.transpose(0, 2, 1).reshape(-1, 16), gl.MAT4, gl.FLOAT)  # glTF matrices are column-major
    doc.skins = [gl.Skin(name="smpl", joints=list(range(len(motion.names))), skeleton=root, inverseBindMatrices=ibm)]
    doc.nodes.append(gl.Node(name="body", mesh=0, skin=0))
    doc.scenes = [gl.Scene(name="track", nodes=[root, len(doc.nodes) - 1])]

    times = blob.add((np.arange(motion.n_frames) / motion.fps).astype(np.float32), gl.SCALAR, gl.FLOAT, bounds=True)
    quats = continuous_quaternions(motion.rotations).astype(np.float32)
    samplers, channels = [], []
    for j in range(len(motion.names)):
        samplers.append(gl.AnimationSampler(input=times, output=blob.add(quats[:, j], gl.VEC4, gl.FLOAT), interpolation=gl.ANIM_LINEAR))
        channels.append(gl.AnimationChannel(sampler=len(samplers) - 1, target=gl.AnimationChannelTarget(node=j, path="rotation")))
    samplers.append(gl.AnimationSampler(input=times, output=blob.add(motion.root_positions.astype(np.float32), gl.VEC3, gl.FLOAT),
                                        interpolation=gl.ANIM_LINEAR))
    channels.append(gl.AnimationChannel(sampler=len(samplers) - 1, target=gl.AnimationChannelTarget(node=root, path="translation")))
    doc.animations = [gl.Animation(name="motion", samplers=samplers, channels=channels)]
    doc.buffers = [gl.Buffer(byteLength=len(blob.data))]
    doc.set_binary_blob(bytes(blob.data))
    return doc


def write_glb(skinned: SkinnedMotion, path: Path | str) -> Path:
    """Write ``skinned`` to ``path`` as a binary glTF (``.glb``); returns the path."""
    path = Path(path)
    gltf_document(skinned).save_binary(str(path))
    return path
