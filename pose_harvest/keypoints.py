"""Keypoint layouts and converters between them, in one place.

Every layout is an ordered tuple of joint names. Conversion is by name, with two explicit rules:

* ``neck`` is derived as the mid-point of the shoulders when a layout has no neck (COCO-17,
  BlazePose-33); the confidence is the smaller of the two shoulder confidences.
* HMMR's slots 0 and 5 hold the *heel* of OpenPose-style data but the *ankle* of 14-joint LSP/H36M
  data (the "heel/ankle trap" of the official code). A source that has no heel (LSP-14, COCO) fills
  them with its ankles; a source with heels (BODY_25, BODY_25B, BlazePose-33) fills them with heels.

Arrays are ``(..., J, 3)``: x, y in pixels (or any unit, conversion does not touch values) and a
confidence in [0, 1]; a missing keypoint is ``(0, 0, 0)``, as OpenPose writes it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Layout:
    """An ordered keypoint layout: ``joints[i]`` is the name of keypoint ``i``."""

    name: str
    joints: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.joints)

    def index(self, joint: str) -> int:
        return self.joints.index(joint)


HMMR25 = Layout(
    "hmmr25",
    (
        "right_heel", "right_knee", "right_hip", "left_hip", "left_knee", "left_heel",
        "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
        "neck", "head_top", "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_big_toe", "right_big_toe", "left_small_toe", "right_small_toe",
        "left_ankle", "right_ankle",
    ),
)

LSP14 = Layout(
    "lsp14",
    (
        "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
        "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
        "neck", "head_top",
    ),
)

BODY25 = Layout(
    "body25",
    (
        "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
        "left_elbow", "left_wrist", "mid_hip", "right_hip", "right_knee", "right_ankle",
        "left_hip", "left_knee", "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear",
        "left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe",
        "right_heel",
    ),
)

BODY25B = Layout(
    "body25b",
    (
        "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
        "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
        "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "neck", "head_top",
        "left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe",
        "right_heel",
    ),
)

COCO18 = Layout(
    "coco18",
    (
        "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
        "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip",
        "left_knee", "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear",
    ),
)

COCO17 = Layout(
    "coco17",
    (
        "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
        "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
        "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
)

BLAZEPOSE33 = Layout(
    "blazepose33",
    (
        "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
        "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
        "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb",
        "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
        "right_ankle", "left_heel", "right_heel", "left_big_toe", "right_big_toe",
    ),
)
"""BlazePose's ``left/right_foot_index`` landmark is the tip of the big toe: named so here."""

POSETRACK17 = Layout(
    "posetrack17",
    (
        "nose", "head_bottom", "head_top", "left_ear", "right_ear", "left_shoulder",
        "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
        "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
)
"""PoseTrack 2018's ``categories[0].keypoints``: COCO-17 with ``head_bottom``/``head_top`` in COCO's
eye slots; its ear slots exist but are never annotated. ``head_bottom`` has no HMMR-25 slot (the
neck is derived from the shoulders)."""

PENN13 = Layout(
    "penn13",
    (
        "head_top", "right_shoulder", "left_shoulder", "right_elbow", "left_elbow", "right_wrist",
        "left_wrist", "right_hip", "left_hip", "right_knee", "left_knee", "right_ankle", "left_ankle",
    ),
)
"""Penn Action's 13 joints (columns of ``x``/``y``/``visibility``) as the official HMMR code reads
them (``read_upenn.py``: Head, R shoulder, L shoulder, ...). The dataset's README names the second
column ``left_shoulder``; the HMMR code, which the paper's numbers come from, takes it as the
person's right, and so does this layout."""

LAYOUTS: dict[str, Layout] = {
    layout.name: layout for layout in (HMMR25, LSP14, BODY25, BODY25B, COCO18, COCO17, BLAZEPOSE33,
                                    POSETRACK17, PENN13)
}

SMPL24 = Layout(
    "smpl24",
    (
        "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
        "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hand", "right_hand",
    ),
)
"""SMPL's 24 kinematic joints, in SMPL's order (the body model's joints and its 72-number pose)."""


def flip_permutation(layout: Layout) -> np.ndarray:
    """``(len(layout),)``: for each joint, the index of its mirror image (left <-> right; others stay)."""
    return np.array([layout.index(n.replace("left_", "@").replace("right_", "left_").replace("@", "right_"))
                     for n in layout.joints])


# Left/right permutations (for horizontal flips).
HMMR25_FLIP = flip_permutation(HMMR25)
LSP14_FLIP = flip_permutation(LSP14)
SMPL24_FLIP = flip_permutation(SMPL24)

# Keypoints below the shoulders (used by the face-only rule of track curation).
HMMR25_BODY_BELOW_SHOULDERS = np.array(
    [
        HMMR25.index(n)
        for n in HMMR25.joints
        if any(p in n for p in ("elbow", "wrist", "hip", "knee", "ankle", "heel", "toe"))
    ]
)

_HMMR25_BONE_NAMES = [
    ("right_heel", "right_ankle"), ("right_ankle", "right_knee"), ("right_knee", "right_hip"),
    ("left_heel", "left_ankle"), ("left_ankle", "left_knee"), ("left_knee", "left_hip"),
    ("right_hip", "left_hip"), ("right_hip", "right_shoulder"), ("left_hip", "left_shoulder"),
    ("right_shoulder", "left_shoulder"), ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"), ("neck", "nose"), ("nose", "left_eye"),
    ("nose", "right_eye"), ("left_eye", "left_ear"), ("right_eye", "right_ear"),
    ("left_ankle", "left_big_toe"), ("right_ankle", "right_big_toe"),
]
HMMR25_BONES = np.array([(HMMR25.index(a), HMMR25.index(b)) for a, b in _HMMR25_BONE_NAMES])
"""``(21, 2)`` keypoint index pairs of the HMMR-25 skeleton's bones (for drawing and masking)."""

_HEEL_FROM_ANKLE = {"right_heel": "right_ankle", "left_heel": "left_ankle"}


def index_map(src: Layout, dst: Layout) -> np.ndarray:
    """``(len(dst),)`` int array: the source index feeding each destination joint, -1 if none.

    Applies the heel/ankle rule for HMMR-25 (see module docstring). ``neck`` derivation is done by
    :func:`convert`, not here, since it needs two sources.
    """
    out = np.full(len(dst), -1, dtype=np.int64)
    for i, name in enumerate(dst.joints):
        if name in src.joints:
            out[i] = src.index(name)
        elif dst is HMMR25 and name in _HEEL_FROM_ANKLE and _HEEL_FROM_ANKLE[name] in src.joints:
            out[i] = src.index(_HEEL_FROM_ANKLE[name])
    return out


HMMR25_TO_LSP14 = index_map(HMMR25, LSP14)
"""``(14,)`` HMMR-25 slots of the LSP-14 joints: the first 14, but the ankles (23, 24), not the heels,
in LSP's slots 0 and 5 (for 3D losses and metrics on LSP joints)."""


def convert(kps: np.ndarray, src: Layout, dst: Layout) -> np.ndarray:
    """Convert ``(..., len(src), 3)`` keypoints to ``(..., len(dst), 3)``.

    Joints the source cannot provide are ``(0, 0, 0)``. ``neck`` is derived from the shoulders when
    the source lacks it.
    """
    kps = np.asarray(kps, dtype=np.float32)
    if kps.shape[-2:] != (len(src), 3):
        raise ValueError(f"expected (..., {len(src)}, 3) keypoints for {src.name}, got {kps.shape}")
    idx = index_map(src, dst)
    out = np.zeros(kps.shape[:-2] + (len(dst), 3), dtype=np.float32)
    have = idx >= 0
    out[..., have, :] = kps[..., idx[have], :]
    if "neck" in dst.joints and "neck" not in src.joints:
        if "left_shoulder" in src.joints and "right_shoulder" in src.joints:
            ls = kps[..., src.index("left_shoulder"), :]
            rs = kps[..., src.index("right_shoulder"), :]
            neck = out[..., dst.index("neck"), :]
            neck[..., :2] = (ls[..., :2] + rs[..., :2]) / 2
            neck[..., 2] = np.minimum(ls[..., 2], rs[..., 2])
            neck[neck[..., 2] <= 0] = 0
    return out


def bbox_from_keypoints(kps: np.ndarray, min_conf: float = 0.1) -> np.ndarray:
    """Tight ``(..., 4)`` box ``x0, y0, x1, y1`` around keypoints with confidence >= ``min_conf``.

    NaN where no keypoint is visible.
    """
    kps = np.asarray(kps, dtype=np.float32)
    vis = kps[..., 2] >= min_conf
    x = np.where(vis, kps[..., 0], np.nan)
    y = np.where(vis, kps[..., 1], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows give NaN, as documented
        return np.stack([np.nanmin(x, -1), np.nanmin(y, -1), np.nanmax(x, -1), np.nanmax(y, -1)], -1)
