"""The HMMR crop and the paper's augmentation, as one affine map per frame (numpy + cv2).

A frame of a track is scaled so the person is 150 px tall (``track_frames.scale``), a 300 x 300 square
around the smoothed centre is cut out and resized to 224 x 224 (hmmr-reference.md). Augmentation moves
that square by up to 20 px (pixels of the 300 x 300 crop), scales it by 1 +- 0.3 and mirrors it with
p = 0.5; one draw per window, so all T frames move together. Image and keypoints go through the same
``(2, 3)`` matrix, from video pixels to crop pixels.

Coordinates are pixel centres: pixel ``i`` spans ``[i - 0.5, i + 0.5]``. Normalised crop coordinates
put the crop's left/top edge at -1 and its right/bottom edge at +1, so a mirror maps ``x`` to ``-x``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pose_harvest.curate import CurationConfig
from pose_harvest.keypoints import HMMR25_FLIP, LSP14_FLIP, SMPL24_FLIP

CROP_PX = 224  # network input side
CONTEXT_PX = 300  # side of the square cut around the person, in pixels of the 150-px-person image
PERSON_PX = CurationConfig().person_height_px  # 150


@dataclass(frozen=True)
class Augment:
    """The paper's augmentation. ``max_translation_px`` in pixels of the 300 x 300 crop (person 150 px);
    ``scale_range``: the crop is scaled by a factor drawn from ``[1 - r, 1 + r]``."""

    max_translation_px: float = 20.0
    scale_range: float = 0.3
    flip_prob: float = 0.5

    def draw(self, rng: np.random.Generator) -> Jitter:
        dx, dy = rng.uniform(-self.max_translation_px, self.max_translation_px, 2)
        return Jitter(dx=float(dx), dy=float(dy), scale=float(rng.uniform(1 - self.scale_range, 1 + self.scale_range)),
                      flip=bool(rng.random() < self.flip_prob))


@dataclass(frozen=True)
class Jitter:
    """One window's augmentation: shift (pixels of the 300 x 300 crop), zoom factor (> 1: the person
    looks bigger), mirror. ``Jitter()`` is no augmentation."""

    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0
    flip: bool = False


def crop_matrices(center: np.ndarray, scale: np.ndarray, jitter: Jitter = Jitter()) -> np.ndarray:
    """``(T, 2, 3)`` affine maps from video pixels to 224-crop pixels.

    center: ``(T, 2)`` smoothed box centre, video pixels. scale: ``(T,)`` 150 / person height.
    """
    center = np.asarray(center, np.float64).reshape(-1, 2)
    zoom = np.asarray(scale, np.float64).reshape(-1) * jitter.scale  # video px -> 150-px-person px
    k = zoom * CROP_PX / CONTEXT_PX  # video px -> crop px
    mid = (CROP_PX - 1) / 2
    # the crop's centre, in video pixels, is the track centre moved by the jitter (given in 300-crop px)
    cx = center[:, 0] + jitter.dx / zoom
    cy = center[:, 1] + jitter.dy / zoom
    m = np.zeros((len(k), 2, 3))
    m[:, 0, 0], m[:, 0, 2] = k, mid - k * cx
    m[:, 1, 1], m[:, 1, 2] = k, mid - k * cy
    if jitter.flip:  # x -> (CROP_PX - 1) - x
        m[:, 0] = -m[:, 0]
        m[:, 0, 2] += CROP_PX - 1
    return m


def transform_keypoints(kps: np.ndarray, m: np.ndarray, *, flip: bool, normalise: bool) -> np.ndarray:
    """``(T, 25, 3)`` video-pixel keypoints + confidence -> crop pixels (or [-1, 1] with ``normalise``).

    ``flip`` must be the jitter's: mirrored keypoints swap sides with ``HMMR25_FLIP``. Missing
    keypoints (confidence 0) stay ``(0, 0, 0)``.
    """
    kps = np.asarray(kps, np.float64)
    xy = np.einsum("tij,tkj->tki", m[:, :, :2], kps[..., :2]) + m[:, None, :, 2]
    if normalise:
        xy = (xy + 0.5) / (CROP_PX / 2) - 1
    out = np.concatenate([xy, kps[..., 2:]], -1)
    out[kps[..., 2] <= 0] = 0
    if flip:
        out = out[:, HMMR25_FLIP]
    return out.astype(np.float32)


def flip_joints_3d(joints: np.ndarray) -> np.ndarray:
    """``(..., 14, 3)`` LSP-14 joints (camera frame) of a mirrored image: x negated, left and right swapped."""
    return joints[..., LSP14_FLIP, :] * np.array([-1.0, 1.0, 1.0], dtype=joints.dtype)


def flip_pose(pose: np.ndarray) -> np.ndarray:
    """``(..., 72)`` SMPL axis-angle pose (global rotation in the camera frame) of a mirrored image:
    the mirror ``M = diag(-1, 1, 1)`` turns each rotation ``R`` into ``M R M``, whose axis-angle is
    ``(x, -y, -z)``; left and right joints swap (HMR's ``reflect_pose``)."""
    aa = pose.reshape(pose.shape[:-1] + (24, 3))[..., SMPL24_FLIP, :] * np.array([1.0, -1.0, -1.0], dtype=pose.dtype)
    return aa.reshape(pose.shape)


def transform_boxes(boxes: np.ndarray, m: np.ndarray, *, normalise: bool) -> np.ndarray:
    """``(T, 4)`` boxes ``x0, y0, x1, y1`` in video pixels -> crop pixels (or [-1, 1]); still x0 <= x1
    after a mirror. All-zero rows (no detection) stay zero."""
    boxes = np.asarray(boxes, np.float64)
    corners = boxes.reshape(-1, 2, 2)  # (T, [top-left, bottom-right], xy)
    xy = np.einsum("tij,tkj->tki", m[:, :, :2], corners) + m[:, None, :, 2]
    if normalise:
        xy = (xy + 0.5) / (CROP_PX / 2) - 1
    out = np.concatenate([xy.min(1), xy.max(1)], -1)
    out[~boxes.any(1)] = 0
    return out.astype(np.float32)


def crop_images(frames: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``(T, H, W, 3)`` uint8 frames -> ``(T, 224, 224, 3)`` uint8 crops through ``m`` (T, 2, 3).

    Big downscales go through ``cv2.INTER_AREA`` first (so a 1080p person is averaged, not aliased);
    outside the frame the edge pixels are repeated, as the official code pads with ``mode='edge'``.
    """
    out = np.empty((len(frames), CROP_PX, CROP_PX, 3), np.uint8)
    for t, (frame, mt) in enumerate(zip(frames, m)):
        k = float(np.hypot(*mt[0, :2]))
        if k < 0.5:  # pre-shrink by ~k, then warp at about unit scale
            h, w = frame.shape[:2]
            nw, nh = max(1, round(w * k)), max(1, round(h * k))
            frame = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)
            fx, fy = nw / w, nh / h  # resized pixel centre x' = (x + 0.5) fx - 0.5
            pre = np.array([[fx, 0, 0.5 * fx - 0.5], [0, fy, 0.5 * fy - 0.5], [0, 0, 1]])
            mt = mt @ np.linalg.inv(pre)
        out[t] = cv2.warpAffine(frame, mt, (CROP_PX, CROP_PX), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out
