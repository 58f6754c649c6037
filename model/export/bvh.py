"""Write a skeletal :class:`~warehouse.mocap.motion.Motion` as BVH (Biovision hierarchy), e.g. for Blender.

The hierarchy is the motion's joints under their names (SMPL's 24 for a track). Every joint has the channels
``Zrotation Xrotation Yrotation`` (degrees; the local rotation is ``Rz @ Rx @ Ry``, intrinsic Z-X-Y);
the root has ``Xposition Yposition Zposition`` before them, with ``OFFSET 0 0 0`` so that readers that
add the root's offset to its positions and readers that replace it agree. Leaf joints (feet, head,
hands) end in an End Site half their own bone's length further on. Lengths in metres by default
(``units="cm"`` for centimetres). Y up.

A small writer (numpy + scipy) rather than ``bvhio``: bvhio builds a Python object per joint and
keyframe and is documented as very slow past ~500 frames, which a harvested track easily has.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from warehouse.mocap.motion import Motion

UNIT_SCALE = {"m": 1.0, "cm": 100.0}
EULER = "ZXY"  # scipy intrinsic order, the same as the channel order written


def _depth_first(parents: list[int]) -> list[int]:
    children: dict[int, list[int]] = {}
    for j, p in enumerate(parents):
        children.setdefault(p, []).append(j)
    order, stack = [], list(reversed(children[-1]))
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(children.get(j, [])))
    return order


def bvh_text(motion: Motion, units: str = "m") -> str:
    """The BVH file's text; ``units`` ``"m"`` or ``"cm"``."""
    if units not in UNIT_SCALE:
        raise ValueError(f"units must be one of {sorted(UNIT_SCALE)}, got {units!r}")
    scale = UNIT_SCALE[units]
    offsets = motion.offsets * scale
    parents = [int(p) for p in motion.parents]
    order = _depth_first(parents)
    has_child = {p for p in parents if p >= 0}
    depth: dict[int, int] = {}
    lines = ["HIERARCHY"]
    stack: list[int] = []  # the joints whose block is open, root first

    def close_to(level: int) -> None:
        while len(stack) > level:
            lines.append("\t" * (len(stack) - 1) + "}")
            stack.pop()

    for j in order:
        p = parents[j]
        depth[j] = 0 if p < 0 else depth[p] + 1
        close_to(depth[j])
        pad = "\t" * depth[j]
        if p < 0:
            lines += [f"ROOT {motion.names[j]}", "{", "\tOFFSET 0.000000 0.000000 0.000000",
                      "\tCHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation"]
        else:
            lines += [f"{pad}JOINT {motion.names[j]}", f"{pad}{{", f"{pad}\tOFFSET " + " ".join(f"{v:.6f}" for v in offsets[j]),
                      f"{pad}\tCHANNELS 3 Zrotation Xrotation Yrotation"]
        stack.append(j)
        if j not in has_child:
            end = offsets[j] / 2
            lines += [f"{pad}\tEnd Site", f"{pad}\t{{", f"{pad}\t\tOFFSET " + " ".join(f"{v:.6f}" for v in end), f"{pad}\t}}"]
    close_to(0)
    n = motion.n_frames
    euler = Rotation.from_quat(motion.rotations[:, order].reshape(-1, 4)).as_euler(EULER, degrees=True).reshape(n, -1)
    values = np.concatenate([motion.root_positions * scale, euler], axis=1)
    lines += ["MOTION", f"Frames: {n}", f"Frame Time: {1.0 / motion.fps:.8f}"]
    lines += [" ".join(f"{v:.6f}" for v in row) for row in values]
    return "\n".join(lines) + "\n"


def write_bvh(motion: Motion, path: Path | str, units: str = "m") -> Path:
    """Write ``motion`` to ``path`` as BVH (see the module docstring); returns the path."""
    path = Path(path)
    path.write_text(bvh_text(motion, units))
    return path
