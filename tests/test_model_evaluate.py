"""The sliding-window protocol and the per-track metrics of the evaluate flow."""

from __future__ import annotations

import numpy as np
import torch

from model.evaluate import predict_track, summarize, track_metrics, window_starts
from model.networks import HMMR
from pose_harvest.keypoints import HMMR25_TO_LSP14

from .test_model_train import CFG, _skeleton


def test_windows_cover_every_frame_with_full_context():
    assert window_starts(8) == [0] and window_starts(9) == [0, 8] and window_starts(50) == [0, 8, 16, 24, 32, 40, 48]


def test_predict_track_keeps_the_window_centres():
    torch.manual_seed(0)
    model, skel = HMMR(CFG).eval(), _skeleton()
    kps = np.random.default_rng(0).uniform(-1, 1, (27, 25, 3)).astype(np.float32)
    pred = predict_track(model, skel, kps)
    assert pred["theta"].shape == (27, 85) and pred["kps3d"].shape == (27, 25, 3) and pred["kps2d"].shape == (27, 25, 2)
    assert pred["theta_dt+5"].shape == (27, 85) and pred["kps3d_dt-5"].shape == (27, 25, 3)
    window = np.zeros((1, 20, 25, 3), np.float32)  # the second window: padded frames 8..27 = track 2..21
    window[0] = kps[2:22]
    with torch.no_grad():
        direct = model(torch.as_tensor(window)).theta[0, 6:14].numpy()  # its central 8 = track 8..15
    np.testing.assert_allclose(pred["theta"][8:16], direct, atol=1e-5)


def test_track_metrics_of_a_perfect_prediction():
    rng = np.random.default_rng(0)
    n = 30
    kps3d = rng.normal(size=(n, 25, 3)) * 0.3
    joints = kps3d[:, HMMR25_TO_LSP14]
    cam = np.array([1.2, 0.1, -0.1])
    kps2d = cam[0] * (kps3d[..., :2] + cam[1:])
    gt = np.concatenate([kps2d, np.ones((n, 25, 1))], -1)
    pred = {"kps3d": kps3d, "kps2d": kps2d, "kps3d_dt+5": np.roll(kps3d, -5, 0), "kps3d_dt-5": np.roll(kps3d, 5, 0)}
    m = track_metrics(pred, gt, joints)
    assert np.allclose(m["pck"], 1) and np.allclose(m["mpjpe"], 0) and np.allclose(m["pa_mpjpe"], 0, atol=1e-6)
    assert np.allclose(m["accel_error"], 0) and m["accel"].shape == (n - 2,)
    assert np.allclose(m["mpjpe_dt+5"], 0) and np.allclose(m["pck_dt-5"], 1)  # the heads are exact here
    assert m["mpjpe_const+5"].mean() > 10  # the present copied 5 frames ahead is not
    s = summarize([m, {k: v + 1 for k, v in m.items()}])
    assert s["mpjpe"] == 0.5 and set(s) == set(m)
