"""Export a track's predicted motion to files that open in Blender: BVH (skeleton) and glTF (skinned mesh).

``export_motion(path, pose (N, 72), shape (10,), trans (N, 3) or None, fps, body)`` writes the format
its suffix names (``.bvh``, ``.glb``); :func:`skinned_motion` gives what the writers take (the BVH
writer only its skeletal :class:`~warehouse.mocap.motion.Motion`, so it writes any skeleton's). Metres, Y up (HMMR's camera-frame poses are turned upright; see :mod:`model.export.motion`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.body import BodyModel
from model.export.bvh import bvh_text, write_bvh
from model.export.gltf import gltf_document, write_glb
from model.export.motion import CAMERA_TO_Y_UP, SkinnedMotion, skinned_motion

FORMATS = {".bvh": "bvh", ".glb": "gltf"}


def export_motion(path: Path | str, pose: np.ndarray, shape: np.ndarray, trans: np.ndarray | None, fps: float, body: BodyModel,
                  *, camera_frame: bool = True, units: str = "m") -> Path:
    """Write a track's motion to ``path``: BVH for ``.bvh`` (lengths in ``units``, ``"m"`` or ``"cm"``),
    an animated skinned glTF for ``.glb`` (metres). Arguments as :func:`skinned_motion`."""
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"{path}: unknown export format {path.suffix!r}; use one of {', '.join(FORMATS)}")
    skinned = skinned_motion(pose, shape, trans, fps, body, camera_frame=camera_frame)
    return write_bvh(skinned.motion, path, units) if kind == "bvh" else write_glb(skinned, path)


__all__ = ["CAMERA_TO_Y_UP", "FORMATS", "SkinnedMotion", "bvh_text", "export_motion", "gltf_document", "skinned_motion",
           "write_bvh", "write_glb"]
