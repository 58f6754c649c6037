"""Evaluation metrics as the HMMR authors compute them (hmmr-reference.md, "Metrics").

3D joints are ``(T, 14, 3)`` LSP joints in metres in, millimetres out; 2D keypoints are ``(T, K, 2)``
in the 224 crop normalised to [-1, 1]. Per track values are nan-means over frames; a dataset value is
the mean over tracks (:func:`mean_over_tracks`).
"""

from __future__ import annotations

import numpy as np

from model.camera import align_by_pelvis


def mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Mean per-joint position error per frame, mm, after hip centring: ``(T,)``."""
    return 1000 * np.linalg.norm(align_by_pelvis(pred) - align_by_pelvis(gt), axis=-1).mean(-1)


def procrustes(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``pred`` ``(K, 3)`` aligned to ``gt`` by the similarity (rotation, scale, translation) that
    minimises the squared error (Umeyama / orthogonal Procrustes with reflection excluded)."""
    mu_p, mu_g = pred.mean(0), gt.mean(0)
    p, g = pred - mu_p, gt - mu_g
    u, s, vt = np.linalg.svd(p.T @ g)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.diag([1.0, 1.0, d])
    rot = u @ fix @ vt
    scale = (s * np.diag(fix)).sum() / (p**2).sum()
    return scale * p @ rot + mu_g


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """MPJPE after Procrustes alignment of each frame, mm: ``(T,)``."""
    return np.array([1000 * np.linalg.norm(procrustes(p, g) - g, axis=-1).mean() for p, g in zip(pred, gt)])


def acceleration(joints: np.ndarray) -> np.ndarray:
    """The prediction's own acceleration (the official "accel": smoothness, not an error), mm/frame^2:
    mean over joints of ``||x[t-1] - 2 x[t] + x[t+1]||``, ``(T - 2,)``."""
    acc = joints[:-2] - 2 * joints[1:-1] + joints[2:]
    return 1000 * np.linalg.norm(acc, axis=-1).mean(-1)


def acceleration_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Mean over joints of ``||a_pred - a_gt||`` with ``a`` the second finite difference of the
    hip-centred joints, mm/frame^2: ``(T - 2,)``."""
    p, g = align_by_pelvis(pred), align_by_pelvis(gt)
    a_p = p[:-2] - 2 * p[1:-1] + p[2:]
    a_g = g[:-2] - 2 * g[1:-1] + g[2:]
    return 1000 * np.linalg.norm(a_p - a_g, axis=-1).mean(-1)


def pck_aligned(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, threshold: float = 0.05,
                min_visible: int = 6) -> np.ndarray:
    """PCK per frame after the optimal 2D scale + translation alignment of ``pred`` onto the visible
    ``gt`` keypoints; a keypoint is correct when within ``threshold`` of the crop size (the crop spans
    2 units in normalised coordinates, so the distance is compared with ``2 * threshold``).
    NaN where fewer than ``min_visible`` keypoints are visible. ``(T, K, 2)``, ``(T, K, 2)``,
    ``(T, K)`` -> ``(T,)``."""
    out = np.full(len(pred), np.nan)
    for t, (p, g, v) in enumerate(zip(pred, gt, visible.astype(bool))):
        if v.sum() < min_visible:
            continue
        mp, mg = p[v].mean(0), g[v].mean(0)
        dp, dg = p[v] - mp, g[v] - mg
        s = (dp * dg).sum() / max((dp * dp).sum(), 1e-12)
        aligned = s * dp + mg
        out[t] = (np.linalg.norm(aligned - g[v], axis=-1) <= 2 * threshold).mean()
    return out


def mean_over_tracks(per_track: list[np.ndarray]) -> float:
    """The authors' aggregate: nan-mean within each track, then the mean over tracks."""
    means = [np.nanmean(v) for v in per_track if np.isfinite(v).any()]
    return float(np.mean(means)) if means else float("nan")
