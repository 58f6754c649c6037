"""Synthetic videos of a 3D body motion: a random but plausible static camera, the body's keypoints
projected through it, and detector-like errors on them.

The camera is a pinhole in OpenCV's convention (x right, y down, z forward; pixel centres at integer
coordinates, the principal point at the image centre), placed like a person filming someone: 3 to 10 m
from the middle of the motion, 0.5 to 2.5 m above the floor (the mocap's y = 0), from any direction,
aimed near the person's pelvis with a small extra pitch and roll, with the horizontal field of view
of a phone or a YouTube video (45 to 75 degrees). The world is the mocap's: metres, y up.

:func:`film` gives one view: detector-like 2D keypoints in pixels (:func:`pose_harvest.detector_noise.apply_noise`:
jitter, outliers, misses, confidences and dropped frames as measured on real tracks, plus truncation
at the image border) and the 3D ground truth in the camera frame (LSP-14 joints, and the SMPL pose
whose global rotation is turned into the camera frame, with the matching translation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from pose_harvest.detector_noise import DetectorNoise, apply_noise
from pose_harvest.keypoints import HMMR25_TO_LSP14

MIN_DEPTH_M = 0.5  #: points nearer the camera than this are not projected
MIN_CLEARANCE_M = 2.0  #: a sampled camera keeps at least this distance from the pelvis in every frame
_UP = np.array([0.0, 1.0, 0.0])


@dataclass(frozen=True)
class PinholeCamera:
    """``rotation (3, 3)`` world -> camera (rows: the camera's right, down and forward axes in world
    coordinates), ``center (3,)`` its position (metres, world), ``focal_px``, image ``width`` x ``height``."""

    rotation: np.ndarray
    center: np.ndarray
    focal_px: float
    width: int
    height: int

    @property
    def principal_point(self) -> tuple[float, float]:
        return (self.width - 1) / 2, (self.height - 1) / 2

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points ``(..., 3)`` -> camera frame ``(..., 3)`` metres: ``R (X - C)``."""
        return (np.asarray(points, np.float64) - self.center) @ self.rotation.T

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points ``(..., 3)`` -> pixels ``(..., 2)``: ``u = f x / z + cx``, ``v = f y / z + cy``;
        NaN for points less than :data:`MIN_DEPTH_M` in front of the camera."""
        cam = self.to_camera(points)
        z = cam[..., 2:]
        cx, cy = self.principal_point
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = self.focal_px * cam[..., :2] / z + np.array([cx, cy])
        return np.where(z >= MIN_DEPTH_M, uv, np.nan)

    def as_dict(self) -> dict:
        return {"rotation": np.round(self.rotation, 6).tolist(), "center": np.round(self.center, 4).tolist(),
                "focal_px": round(float(self.focal_px), 2), "width": self.width, "height": self.height}


@dataclass(frozen=True)
class CameraRanges:
    """Where cameras are drawn from (uniformly): distance from the motion's middle and height above
    the floor (metres), horizontal field of view (degrees); ``aim_m``: the aim point's offset from the
    mean pelvis (uniform in a disc of that radius); ``pitch_deg`` / ``roll_deg``: extra tilts (normal,
    that standard deviation); image ``width`` x ``height`` pixels."""

    distance_m: tuple[float, float] = (3.0, 10.0)
    height_m: tuple[float, float] = (0.5, 2.5)
    fov_deg: tuple[float, float] = (45.0, 75.0)
    aim_m: float = 0.5
    pitch_deg: float = 3.0
    roll_deg: float = 2.0
    width: int = 1280
    height: int = 720


def look_at(center: np.ndarray, target: np.ndarray, roll_rad: float = 0.0) -> np.ndarray:
    """World -> camera rotation ``(3, 3)`` of a camera at ``center`` looking at ``target`` with the
    world's y axis up in the image (then rolled by ``roll_rad`` about the viewing axis)."""
    forward = target - center
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, _UP)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rot = np.stack([right, down, forward])
    return Rotation.from_rotvec([0.0, 0.0, roll_rad]).as_matrix() @ rot


def sample_camera(pelvis: np.ndarray, rng: np.random.Generator, ranges: CameraRanges = CameraRanges(),
                  max_tries: int = 100) -> PinholeCamera:
    """A camera for a motion whose pelvis moves along ``pelvis (F, 3)`` (metres, y-up, floor at y = 0),
    at least :data:`MIN_CLEARANCE_M` from it in every frame."""
    middle = pelvis.mean(0)
    for _ in range(max_tries):
        yaw = rng.uniform(0, 2 * np.pi)
        dist = rng.uniform(*ranges.distance_m)
        center = np.array([middle[0] + dist * np.sin(yaw), rng.uniform(*ranges.height_m), middle[2] + dist * np.cos(yaw)])
        r, a = ranges.aim_m * np.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
        target = middle + np.array([r * np.cos(a), 0.0, r * np.sin(a)])
        if np.linalg.norm((pelvis - center)[:, [0, 2]], axis=1).min() < MIN_CLEARANCE_M:
            continue
        rot = look_at(center, target, np.deg2rad(rng.normal(0, ranges.roll_deg)))
        rot = Rotation.from_rotvec([np.deg2rad(rng.normal(0, ranges.pitch_deg)), 0.0, 0.0]).as_matrix() @ rot
        fov = np.deg2rad(rng.uniform(*ranges.fov_deg))
        return PinholeCamera(rot, center, ranges.width / 2 / np.tan(fov / 2), ranges.width, ranges.height)
    raise ValueError(f"no camera {ranges.distance_m} m away keeps {MIN_CLEARANCE_M} m from this motion (it spans "
                     f"{np.ptp(pelvis[:, [0, 2]], 0).round(1).tolist()} m)")


@dataclass(frozen=True)
class View:
    """One filmed motion of F frames: ``kps (F, 25, 3)`` detector-like pixels + confidence,
    ``has_detection (F,)``, ``clean_px (F, 25, 2)`` the exact projections; ground truth in the camera
    frame: ``joints_3d (F, 14, 3)`` LSP-14 metres, ``pose (F, 72)`` (global rotation in the camera
    frame), ``trans (F, 3)`` (camera = body(pose, betas) + trans)."""

    camera: PinholeCamera
    kps: np.ndarray
    has_detection: np.ndarray
    clean_px: np.ndarray
    joints_3d: np.ndarray
    pose: np.ndarray
    trans: np.ndarray


def film(camera: PinholeCamera, keypoints: np.ndarray, joints: np.ndarray, pose: np.ndarray, trans: np.ndarray, *,
         fps: float, noise: DetectorNoise, rng: np.random.Generator) -> View:
    """Film a fitted body: ``keypoints (F, 25, 3)`` HMMR-25 and ``joints (F, 24, 3)`` SMPL joints (world
    metres), its ``pose (F, 72)`` and ``trans (F, 3)`` (world = body(pose, betas) + trans)."""
    clean = camera.project(keypoints)
    top, bottom = np.nanmin(clean[..., 1], 1), np.nanmax(clean[..., 1], 1)
    height_px = np.nan_to_num(bottom - top, nan=1.0).clip(min=1.0)
    kps, has = apply_noise(clean, height_px, fps, noise, rng, (camera.width, camera.height))
    glob = Rotation.from_matrix(camera.rotation) * Rotation.from_rotvec(pose[:, :3])
    cam_pose = np.concatenate([glob.as_rotvec(), pose[:, 3:]], 1)
    # the body turns about its root joint j0 (the pelvis, posed at joints[:, 0] = j0 + trans)
    j0 = joints[:, 0] - trans
    cam_trans = camera.to_camera(joints[:, 0]) - j0
    return View(camera, kps, has, clean, camera.to_camera(keypoints[:, HMMR25_TO_LSP14]), cam_pose, cam_trans)
