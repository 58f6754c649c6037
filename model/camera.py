"""The weak-perspective camera of HMR/HMMR, and the closed-form camera of the dynamics heads.

A camera is ``(s, tx, ty)``; it maps 3D joints ``X`` (metres, body frame) to the 224 crop normalised to
[-1, 1] as ``x = s * (X[..., :2] + t)`` (the official ``batch_orth_proj_idrot``).
"""

from __future__ import annotations

import numpy as np
import torch


def project(joints: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
    """``(..., K, 3)`` joints and ``(..., 3)`` cameras -> ``(..., K, 2)`` normalised image points."""
    return cam[..., None, :1] * (joints[..., :2] + cam[..., None, 1:])


def optimal_camera(points: torch.Tensor, target: torch.Tensor, visible: torch.Tensor,
                   scale_range: tuple[float, float] = (0.7, 10.0)) -> torch.Tensor:
    """The camera ``(..., 3)`` that best maps ``points`` ``(..., K, 2)`` (orthographic projections)
    onto ``target`` ``(..., K, 2)`` over ``visible`` ``(..., K)`` keypoints, without gradient.

    Solves ``min_{s, t} sum_k v_k ||s (x_k + t) - y_k||^2`` exactly: with visible means mu_x, mu_y,
    ``s = sum v <x - mu_x, y - mu_y> / sum v |x - mu_x|^2`` and ``t = mu_y / s - mu_x``. (The official
    code estimates s as trace(A^-1 B) / 2, which equals this when the spread is isotropic.) The scale
    is clipped to ``scale_range`` as in the official code; with fewer than 2 visible keypoints s is
    the lower clip and t maps the visible mean (or the origin) onto the target mean.
    """
    with torch.no_grad():
        v = visible.to(points.dtype)[..., None]
        n = v.sum(-2, keepdim=True).clamp(min=1.0)
        mu_x = (v * points).sum(-2, keepdim=True) / n
        mu_y = (v * target).sum(-2, keepdim=True) / n
        dx, dy = v * (points - mu_x), v * (target - mu_y)
        s = (dx * dy).sum((-2, -1)) / (dx * dx).sum((-2, -1)).clamp(min=1e-9)
        s = s.clamp(*scale_range)
        t = mu_y[..., 0, :] / s[..., None] - mu_x[..., 0, :]
        return torch.cat([s[..., None], t], -1)


def align_by_pelvis(joints):
    """``(..., 14+, 3)`` joints in LSP order minus their pelvis (mid-point of the hips, LSP 2 and 3);
    a torch tensor or a numpy array, returned as the same type."""
    pelvis = (joints[..., 2:3, :] + joints[..., 3:4, :]) / 2
    return joints - pelvis


def crop_camera_to_image(cam, affine, crop_px: int = 224):
    """The weak-perspective camera of the crop ``(..., 3)`` ``(s, tx, ty)`` expressed in pixels of the
    original image: ``(..., 3)`` ``(s_px, tx_px, ty_px)`` with ``u = s_px * X + tx_px``,
    ``v = s_px * Y + ty_px`` (pixel centres, ``X``/``Y`` in metres).

    ``affine`` ``(..., 2, 3)``: the map from image pixels to crop pixels the crop was cut with
    (:func:`warehouse.crops.crop_matrices`: a scale ``k`` and a shift, no rotation or mirror). The
    crop's normalised ``x_n = s (X + t)`` is crop pixel ``(x_n + 1) crop_px / 2 - 0.5``, and image
    pixel ``(crop pixel - shift) / k``. Numpy arrays in, numpy arrays out.
    """
    cam, affine = np.asarray(cam, np.float64), np.asarray(affine, np.float64)
    k = affine[..., 0, 0]
    if not (np.allclose(affine[..., 0, 1], 0) and np.allclose(affine[..., 1, 0], 0)
            and np.allclose(affine[..., 1, 1], k) and (k > 0).all()):
        raise ValueError("crop_camera_to_image needs a scale-and-shift crop (no rotation or mirror)")
    half = crop_px / 2
    s_px = half * cam[..., 0] / k
    t_px = (half * cam[..., :1] * cam[..., 1:] + (crop_px - 1) / 2 - affine[..., :, 2]) / k[..., None]
    return np.concatenate([s_px[..., None], t_px], -1)
