"""The HMMR networks, camera, losses and metrics: shapes, gradients and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from model import losses, metrics
from model.camera import align_by_pelvis, optimal_camera, project
from model.config import HMMRConfig
from model.networks import (HMMR, Hallucinator, IEFRegressor, KeypointEncoder, PoseDiscriminator, ResNet50,
                            TemporalEncoder)

CFG = HMMRConfig()


def _grads_reach(module: torch.nn.Module, out: torch.Tensor) -> None:
    out.square().mean().backward()
    params = [p for p in module.parameters() if p.requires_grad]
    assert params and all(p.grad is not None and torch.isfinite(p.grad).all() for p in params)


@pytest.mark.parametrize("make, inp, out_shape", [
    (lambda: KeypointEncoder(CFG), (6, 25, 3), (6, 2048)),
    (lambda: TemporalEncoder(CFG), (2, 20, 2048), (2, 20, 2048)),
    (lambda: Hallucinator(CFG), (2, 20, 2048), (2, 20, 2048)),
    (lambda: PoseDiscriminator(CFG), (5, 23, 3, 3), (5, 24)),
], ids=["keypoint-encoder", "f_movie", "hallucinator", "discriminator"])
def test_module_shapes_and_gradients(make, inp, out_shape):
    torch.manual_seed(0)
    module = make()
    out = module(torch.randn(*inp))
    assert out.shape == out_shape
    _grads_reach(module, out)


def test_ief_iterates_from_its_start():
    torch.manual_seed(0)
    ief = IEFRegressor(CFG, 85).eval()
    phi, start = torch.randn(4, 2048), torch.randn(4, 85)
    out = ief(phi, start)
    assert out.shape == (4, 85) and (out - start).abs().max() < 0.5  # small last layer: near the start
    ief.train()
    _grads_reach(ief, ief(phi, start))


def test_resnet50_has_torchvision_layout(tmp_path):
    net = ResNet50()
    assert sum(p.numel() for p in net.parameters()) == 23_508_032  # torchvision resnet50 minus fc
    assert net(torch.randn(1, 3, 224, 224)).shape == (1, 2048)
    state = {k: v for k, v in net.state_dict().items()} | {"fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1000)}
    torch.save(state, tmp_path / "r50.pt")
    ResNet50().load_weights(str(tmp_path / "r50.pt"))
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not a ResNet-50"):
        ResNet50().load_weights(str(tmp_path / "bad.pt"))


def test_temporal_receptive_field_is_13_frames():
    torch.manual_seed(0)
    enc = TemporalEncoder(CFG)
    assert enc.receptive_field == 13
    for block in enc.blocks:  # isolate the convolutions: GroupNorm statistics span the window
        block.body[0] = block.body[3] = torch.nn.Identity()
    x = torch.randn(1, 40, 2048, requires_grad=True)
    enc(x)[0, 20].sum().backward()
    reached = (x.grad[0].abs().sum(-1) > 0).nonzero().flatten().tolist()
    assert reached == list(range(14, 27))  # frames 20 - 6 .. 20 + 6


def test_hmmr_forward_and_single_frame_baseline():
    torch.manual_seed(0)
    model = HMMR(CFG)
    pred = model(torch.randn(2, 20, 25, 3))
    assert pred.theta.shape == (2, 20, 85) and set(pred.theta_dt) == {-5, 5}
    assert pred.movie_hal.shape == (2, 20, 2048) and pred.theta_hal.shape == (2, 20, 85)
    for dt, theta in pred.theta_dt.items():  # heads: pose only; shape copied from the present
        assert torch.equal(theta[..., 75:], pred.theta[..., 75:])
        assert torch.equal(theta[..., :3], torch.tensor([1.0, 0.0, 0.0]).expand(2, 20, 3))
    _grads_reach(model, pred.theta + sum(pred.theta_dt.values()) + pred.theta_hal)
    baseline = HMMR(HMMRConfig(temporal=False))
    frames = torch.randn(1, 20, 25, 3)
    baseline.eval()
    alone = baseline(frames[:, 7:8]).theta[0, 0]
    assert torch.allclose(baseline(frames).theta[0, 7], alone, atol=1e-5)  # no temporal context at all


def test_projection_and_optimal_camera_recover_a_known_camera():
    torch.manual_seed(0)
    joints = torch.randn(3, 25, 3)
    cam = torch.tensor([[1.3, 0.1, -0.2], [0.8, 0.0, 0.3], [2.0, -0.5, 0.5]])
    x = project(joints, cam)
    np.testing.assert_allclose(x[1, 4].numpy(), (0.8 * (joints[1, 4, :2] + torch.tensor([0.0, 0.3]))).numpy(), rtol=1e-6)
    vis = torch.ones(3, 25)
    vis[0, :10] = 0
    x[0, :10] += 5  # invisible keypoints must not matter
    solved = optimal_camera(joints[..., :2], x, vis)
    np.testing.assert_allclose(solved.numpy(), cam.numpy(), atol=1e-5)
    assert optimal_camera(joints[..., :2], x * 100, vis)[:, 0].max() == 10.0  # scale clipped
    assert not optimal_camera(joints[..., :2].requires_grad_(), x, vis).requires_grad


def test_losses_against_hand_computed_values():
    pred = torch.tensor([[[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]])
    gt = torch.tensor([[[0.5, 0.0, 1.0], [1.0, 3.0, 1.0], [9.0, 9.0, 0.0]]])
    assert losses.keypoint_l1(pred, gt).item() == pytest.approx((0.5 + 0 + 0 + 2) / 4)
    j_pred = torch.zeros(2, 14, 3)
    j_gt = torch.zeros(2, 14, 3)
    j_gt[0, 0, 0] = 2.0  # one joint off by 2 m in the item with 3D; pelvis (2, 3) unchanged
    j_gt[1] = 7.0
    assert losses.joints_3d(j_pred, j_gt, torch.tensor([1.0, 0.0])).item() == pytest.approx(0.5 * 4 / 42)
    shapes = torch.zeros(1, 3, 10)
    shapes[0, 1] = 1.0
    assert losses.const_shape(shapes).item() == pytest.approx(0.5 * 20 / 20)
    assert losses.shape_prior(shapes).item() == pytest.approx(10 / 30)
    fake = torch.zeros(2, 24)
    real = torch.ones(2, 24)
    assert losses.adversarial_generator(fake).item() == 24.0
    assert losses.adversarial_discriminator(real, fake).item() == 0.0
    rot = torch.eye(3).expand(2, 24, 3, 3)
    assert losses.smpl_params(rot * 2, rot, torch.ones(2, 10), torch.zeros(2, 10), torch.tensor([1.0, 1.0])).item() == pytest.approx(0.5 * (3 / 9 + 1))
    assert losses.hallucination(torch.ones(1, 2, 4), torch.zeros(1, 2, 4)).item() == 1.0


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


def test_metrics_against_hand_computed_values():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(4, 14, 3))
    moved = 1.7 * gt @ _rotation(np.array([1.0, 2.0, 3.0]), 0.7).T + np.array([0.3, -1.0, 2.0])
    np.testing.assert_allclose(metrics.pa_mpjpe(moved, gt), 0, atol=1e-9)  # Procrustes undoes it all
    shifted = gt + np.array([0.0, 0.0, 0.01])
    np.testing.assert_allclose(metrics.mpjpe(shifted, gt), 0, atol=1e-9)  # hip centring removes a shift
    off = gt.copy()
    off[:, 0] += np.array([0.03, 0.04, 0.0])  # one joint of 14 off by 5 cm, the hips fixed
    np.testing.assert_allclose(metrics.mpjpe(off, gt), 50 / 14)
    t = np.arange(6, dtype=float)
    fall = np.zeros((6, 14, 3))
    fall[..., 1] = 0.5 * 0.002 * t[:, None] ** 2  # constant acceleration 2 mm / frame^2 on every joint
    np.testing.assert_allclose(metrics.acceleration(fall), 2.0)
    np.testing.assert_allclose(metrics.acceleration_error(fall, np.zeros_like(fall)), 0, atol=1e-9)  # hips move too
    wobble = np.zeros((5, 14, 3))
    wobble[2, 0, 0] = 0.001  # one joint 1 mm out at one frame
    np.testing.assert_allclose(metrics.acceleration_error(wobble, np.zeros_like(wobble)), [1 / 14, 2 / 14, 1 / 14])
    kp = rng.uniform(-1, 1, size=(3, 25, 2))
    vis = np.ones((3, 25), bool)
    vis[2, 8:] = False
    pred = 0.5 * kp + 0.2  # a scaled, shifted copy: perfect after alignment
    pred[0, 20:] += 5.0
    vis[0, 20:] = False  # ... whatever its invisible keypoints say
    pred[1, :4] += 0.25 * np.array([[1, 0], [-1, 0], [0, 1], [0, -1]])  # 4 of 25 off, the mean kept
    pck = metrics.pck_aligned(pred, kp, vis)
    assert pck[0] == 1.0 and pck[2] == 1.0 and pck[1] == 21 / 25
    vis[2, 3:] = False
    assert np.isnan(metrics.pck_aligned(pred, kp, vis)[2])  # fewer than 6 visible
    assert metrics.mean_over_tracks([np.array([1.0, np.nan]), np.array([3.0, 3.0])]) == 2.0


def test_align_by_pelvis_on_tensors_and_arrays():
    j = np.arange(14 * 3, dtype=float).reshape(14, 3)
    out = align_by_pelvis(j)
    assert isinstance(out, np.ndarray) and np.allclose((out[2] + out[3]) / 2, 0)
    assert torch.allclose(align_by_pelvis(torch.tensor(j)), torch.tensor(out))
