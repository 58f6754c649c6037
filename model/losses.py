"""The HMMR losses, one function each (shapes in the docstrings), as the official code computes them.

Keypoints are ``(..., K, 3)``: x, y in the 224 crop normalised to [-1, 1], and a visibility weight
(0/1, or the detector confidence thresholded by the caller). 3D joints are metres.
"""

from __future__ import annotations

import torch

from model.camera import align_by_pelvis


def keypoint_l1(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Visibility-weighted L1 of ``(..., K, 2)`` predictions against ``(..., K, 3)`` targets: the sum of
    ``v |x - x_hat|`` over coordinates, divided by the number of coordinates (tf.losses'
    absolute_difference with weights, the official ``compute_loss_e_kp``)."""
    vis = gt[..., 2:]
    return (vis * (gt[..., :2] - pred).abs()).sum() / (vis.expand_as(pred) > 0).sum().clamp(min=1)


def joints_3d(pred: torch.Tensor, gt: torch.Tensor, has_3d: torch.Tensor) -> torch.Tensor:
    """0.5 * MSE of pelvis-aligned LSP-14 joints ``(N, 14, 3)``, over the items with ``has_3d`` ``(N,)``."""
    w = has_3d.to(pred.dtype)
    err = (align_by_pelvis(pred[..., :14, :]) - align_by_pelvis(gt[..., :14, :])) ** 2
    return 0.5 * (w[:, None, None] * err).sum() / (w.sum() * 14 * 3).clamp(min=1)


def smpl_params(pred_rotmats: torch.Tensor, gt_rotmats: torch.Tensor, pred_shape: torch.Tensor,
                gt_shape: torch.Tensor, has_smpl: torch.Tensor) -> torch.Tensor:
    """0.5 * MSE of the 24 joint rotation matrices ``(N, 24, 3, 3)`` plus 0.5 * MSE of the shapes
    ``(N, 10)``, over the items with mocap parameters ``has_smpl`` ``(N,)``."""
    w = has_smpl.to(pred_shape.dtype)
    n = w.sum().clamp(min=1)
    pose = ((pred_rotmats - gt_rotmats) ** 2).flatten(1).mean(1)
    shape = ((pred_shape - gt_shape) ** 2).mean(1)
    return 0.5 * ((w * pose).sum() + (w * shape).sum()) / n


def const_shape(shapes: torch.Tensor) -> torch.Tensor:
    """0.5 * MSE between the shapes of consecutive frames, ``(B, T, 10)``: one person, one shape."""
    return 0.5 * ((shapes[:, 1:] - shapes[:, :-1]) ** 2).mean()


def shape_prior(shapes: torch.Tensor) -> torch.Tensor:
    """Mean squared shape coefficient (the paper's beta prior)."""
    return (shapes**2).mean()


def adversarial_generator(fake_scores: torch.Tensor) -> torch.Tensor:
    """LSGAN generator term: mean over items of the sum over the 24 scores of ``(D - 1)^2``."""
    return ((fake_scores - 1) ** 2).sum(1).mean()


def adversarial_discriminator(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """LSGAN discriminator loss: ``sum (D(real) - 1)^2 + sum D(fake)^2``, each averaged over items."""
    return ((real_scores - 1) ** 2).sum(1).mean() + (fake_scores**2).sum(1).mean()


def hallucination(movie_hal: torch.Tensor, movie: torch.Tensor) -> torch.Tensor:
    """MSE between hallucinated and real movie strips ``(B, T, C)`` (the official code lets the
    gradient reach both)."""
    return ((movie_hal - movie) ** 2).mean()
