"""The paper's test protocol on whole tracks, and the metrics per track.

Sliding windows (the official ``Tester.predict_all_images``): a track of N frames is padded with
``margin`` = 6 empty frames on both sides (half the 13-frame receptive field), cut into windows of
T = 20 with stride T - 2 * margin = 8, and only each window's central 8 predictions are kept, so
every kept prediction saw its full temporal context.

Metrics per track (:mod:`model.metrics`): PCK@0.05 after 2D alignment on the 224 crop, the
prediction's own acceleration ("accel", smoothness), and where 3D ground truth exists MPJPE,
PA-MPJPE and the acceleration error; the same for the past/future heads (prediction at t against frame
t + dt, with the closed-form camera) and for the constant baseline that copies the present to t + dt.
"""

from __future__ import annotations

import numpy as np
import torch

from model import metrics
from model.camera import optimal_camera, project
from model.networks import HMMR
from model.skeleton import KeypointSkeleton
from pose_harvest.keypoints import HMMR25_TO_LSP14 as LSP


def window_starts(n_frames: int, T: int = 20, margin: int = 6) -> list[int]:
    """Starts (in the padded sequence) of the windows whose central ``T - 2 margin`` frames cover
    ``n_frames`` frames; window ``i`` keeps frames ``i * g .. i * g + g - 1`` of the track."""
    g = T - 2 * margin
    return [i * g for i in range(-(-n_frames // g))]


@torch.no_grad()
def predict_track(model: HMMR, skeleton: KeypointSkeleton, kps: np.ndarray, *, margin: int = 6,
                  batch_windows: int = 16) -> dict[str, np.ndarray]:
    """Predict every frame of one track with the sliding-window protocol.

    ``kps`` ``(N, 25, 3)``: keypoints in the 224 crop normalised to [-1, 1] + confidence (or, for a
    model with the ResNet-50 encoder, the crops ``(N, 3, 224, 224)`` in [0, 1]: what it encodes). Returns
    ``theta`` ``(N, 85)``, ``kps3d`` ``(N, 25, 3)`` metres, ``kps2d`` ``(N, 25, 2)`` projected with the
    predicted camera, and per dynamics head ``theta_dt{dt}`` / ``kps3d_dt{dt}`` (the pose of frame
    t + dt predicted at t).
    """
    model.eval()
    device = next(model.parameters()).device
    T = model.cfg.seq_len
    g = T - 2 * margin
    n = len(kps)
    starts = window_starts(n, T, margin)
    padded = np.zeros((len(starts) * g + 2 * margin, *kps.shape[1:]), np.float32)  # T = g + 2 margin
    padded[margin:margin + n] = kps
    windows = np.stack([padded[s:s + T] for s in starts])  # (W, T, 25, 3)
    keep = slice(margin, margin + g)
    parts: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(windows), batch_windows):
        pred = model(torch.as_tensor(windows[i:i + batch_windows], device=device), hallucinate=False)
        heads = {"": pred.theta} | {f"_dt{dt:+d}": th for dt, th in pred.theta_dt.items()}
        for name, theta in heads.items():
            theta = theta[:, keep].reshape(-1, theta.shape[-1])
            k3d, _ = skeleton(theta[:, 75:], theta[:, 3:75])
            parts.setdefault(f"theta{name}", []).append(theta.cpu().numpy())
            parts.setdefault(f"kps3d{name}", []).append(k3d.cpu().numpy())
            if name == "":
                parts.setdefault("kps2d", []).append(project(k3d, theta[:, :3]).cpu().numpy())
    return {k: np.concatenate(v)[:n] for k, v in parts.items()}


def _aligned_2d(points3d: np.ndarray, gt: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Orthographic projections ``(N, K, 2)`` placed with the closed-form camera against ``gt``."""
    pts = torch.as_tensor(points3d)
    cam = optimal_camera(pts[..., :2], torch.as_tensor(gt[..., :2]), torch.as_tensor(visible), (1e-3, 1e3))
    return project(pts, cam).numpy()


def track_metrics(pred: dict[str, np.ndarray], kps: np.ndarray, joints_3d: np.ndarray | None = None,
                  delta_t: tuple[int, ...] = (-5, 5), visible_conf: float = 0.1) -> dict[str, np.ndarray]:
    """Per-frame metric arrays of one track (aggregate with :func:`model.metrics.mean_over_tracks`).

    ``kps`` ``(N, 25, 3)``: the ground truth (or pseudo ground truth) 2D keypoints, crop-normalised;
    ``joints_3d`` ``(N, 14, 3)`` LSP joints in metres when known (compared with the predicted
    keypoints' LSP joints: ankles, not heels, in slots 0 and 5). Keys: ``pck``, ``accel`` and, with 3D, ``mpjpe``,
    ``pa_mpjpe``, ``accel_error``; for each head ``dt`` the same keys suffixed ``_dt{dt:+d}`` (the
    prediction) and ``_const{dt:+d}`` (the present copied to t + dt).
    """
    vis = kps[..., 2] >= visible_conf
    lsp = pred["kps3d"][:, LSP]
    out = {"pck": metrics.pck_aligned(pred["kps2d"], kps[..., :2], vis), "accel": metrics.acceleration(lsp)}
    if joints_3d is not None:
        out |= {"mpjpe": metrics.mpjpe(lsp, joints_3d), "pa_mpjpe": metrics.pa_mpjpe(lsp, joints_3d),
                "accel_error": metrics.acceleration_error(lsp, joints_3d)}
    n = len(kps)
    for dt in delta_t:
        if abs(dt) >= n:
            continue
        src, dst = (slice(0, n - dt), slice(dt, n)) if dt > 0 else (slice(-dt, n), slice(0, n + dt))
        for name, points in ((f"_dt{dt:+d}", pred[f"kps3d_dt{dt:+d}"][src]), (f"_const{dt:+d}", pred["kps3d"][src])):
            gt2d, v = kps[dst, :, :2], vis[dst]
            out[f"pck{name}"] = metrics.pck_aligned(_aligned_2d(points, gt2d, v), gt2d, v)
            if joints_3d is not None:
                out[f"mpjpe{name}"] = metrics.mpjpe(points[:, LSP], joints_3d[dst])
                out[f"pa_mpjpe{name}"] = metrics.pa_mpjpe(points[:, LSP], joints_3d[dst])
    return out


def summarize(per_track: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """Every metric as the mean over tracks of the per-track nan-mean (the authors' aggregate)."""
    keys = sorted({k for t in per_track for k in t})
    return {k: metrics.mean_over_tracks([t[k] for t in per_track if k in t]) for k in keys}
