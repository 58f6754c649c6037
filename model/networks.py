"""The HMMR networks (Kanazawa et al. 2019, Sec. 3-4), one module each, and the model that joins them.

Shapes: B sequences of T frames; phi / Phi are ``(B, T, 2048)``; theta is ``(B, T, 85)`` =
camera (3: s, tx, ty) + pose (72: 24 joints x axis-angle, SMPL order) + shape (10).

* :class:`ResNet50` — per-frame image encoder, ``(N, 3, 224, 224)`` in [0, 1] -> ``(N, 2048)``, with
  torchvision's parameter names so a user's ImageNet / HMR weights file loads as it is;
* :class:`KeypointEncoder` — per-frame encoder of the 25 x 3 keypoints -> 2048 (trains on
  pseudo-ground-truth 2D alone, on CPU);
* :class:`TemporalEncoder` — f_movie, pre-activation residual blocks of GroupNorm(32) -> ReLU ->
  Conv1d(k=3) twice, receptive field 13 frames;
* :class:`IEFRegressor` — iterative error feedback, 3 iterations of [Phi, theta] -> fc1024 ->
  dropout -> fc1024 -> dropout -> fc residual;
* :class:`Hallucinator` — phi -> Phi, fc2048 -> ReLU -> fc2048 -> ReLU -> fc2048 plus phi;
* :class:`PoseDiscriminator` — 23 relative joint rotations -> shared 1x1 convs (32, 32) -> 23 per-joint
  outputs + a full-pose output (2 x fc1024 -> 1);
* :class:`HMMR` — f_movie + f_3D + the past/future dynamics heads (+ the hallucinator), as in the
  official code: the heads start from the present prediction and regress pose only; shape is the
  present frame's; their camera is solved in closed form at loss time (:func:`model.camera.optimal_camera`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from model.config import HMMRConfig


# -- per-frame encoders ---------------------------------------------------------------------------

class _Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + identity)


class ResNet50(nn.Module):
    """ResNet-50 without its classifier: ``(N, 3, H, W)`` RGB images in [0, 1] -> ``(N, 2048)``
    average-pooled features (the ImageNet mean/std normalisation is done here). Parameter names match
    torchvision's ``resnet50`` (its ``fc.*`` are ignored by :meth:`load_weights`), so pretrained weights
    are a file the user supplies."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes, layers = 64, []
        for planes, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            stage = [_Bottleneck(inplanes, planes, stride)] + [_Bottleneck(planes * 4, planes) for _ in range(blocks - 1)]
            inplanes = planes * 4
            layers.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1((images - self.mean) / self.std))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def load_weights(self, path: str) -> None:
        """Load a torchvision-format state dict (``torch.save(resnet50().state_dict())``); raises with
        the missing/unexpected names when the file is not a ResNet-50."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        try:
            self.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc.")})
        except RuntimeError as exc:
            raise ValueError(f"{path} is not a ResNet-50 state dict: {str(exc).splitlines()[1].strip()}") from exc


class KeypointEncoder(nn.Module):
    """``(N, 25, 3)`` keypoints (x, y normalised to [-1, 1] over the crop, confidence) -> ``(N, 2048)``.
    Invisible keypoints (confidence below ``visible_conf``) are zeroed before the MLP."""

    def __init__(self, cfg: HMMRConfig):
        super().__init__()
        self.visible_conf = cfg.visible_conf
        self.net = nn.Sequential(
            nn.Linear(cfg.num_keypoints * 3, cfg.keypoint_hidden), nn.ReLU(inplace=True),
            nn.Linear(cfg.keypoint_hidden, cfg.keypoint_hidden), nn.ReLU(inplace=True),
            nn.Linear(cfg.keypoint_hidden, cfg.feature_dim),
        )

    def forward(self, kps: torch.Tensor) -> torch.Tensor:
        vis = (kps[..., 2:] >= self.visible_conf).to(kps.dtype)
        return self.net(torch.cat([kps[..., :2] * vis, vis], -1).flatten(-2))


# -- temporal encoder -----------------------------------------------------------------------------

class _MovieBlock(nn.Module):
    """GroupNorm -> ReLU -> Conv1d -> GroupNorm -> ReLU -> Conv1d, plus the input (pre-activation)."""

    def __init__(self, dim: int, kernel: int, groups: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(groups, dim), nn.ReLU(), nn.Conv1d(dim, dim, kernel, padding=kernel // 2),
            nn.GroupNorm(groups, dim), nn.ReLU(), nn.Conv1d(dim, dim, kernel, padding=kernel // 2),
        )
        nn.init.uniform_(self.body[-1].weight, -1e-3, 1e-3)  # small last layer: starts near identity
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TemporalEncoder(nn.Module):
    """f_movie: ``(B, T, C)`` per-frame features -> ``(B, T, C)`` movie strips Phi. 'Same' zero padding
    in time, as the official code's SAME convolutions. The convolutions see 13 frames; GroupNorm's
    statistics, as in the official code, span the whole window."""

    def __init__(self, cfg: HMMRConfig):
        super().__init__()
        self.blocks = nn.Sequential(*[_MovieBlock(cfg.feature_dim, cfg.movie_kernel, cfg.group_norm_groups)
                                      for _ in range(cfg.movie_blocks)])

    @property
    def receptive_field(self) -> int:
        """Frames seen by one output frame: 1 + 2 * (kernel - 1) per block (13 for the defaults)."""
        block = self.blocks[0].body[2]
        return 1 + len(self.blocks) * 2 * (block.kernel_size[0] - 1)

    def forward(self, phi: torch.Tensor) -> torch.Tensor:
        return self.blocks(phi.transpose(1, 2)).transpose(1, 2)


# -- regressors -----------------------------------------------------------------------------------

class IEFRegressor(nn.Module):
    """Iterative error feedback: ``theta <- theta + f([Phi, theta])`` for ``iterations`` steps.

    ``Phi`` is ``(N, C)``, ``theta_start`` ``(N, D)``; returns ``(N, D)``. The last layer starts small
    (the official code's 0.01-scaled Xavier), so the first prediction is close to the start.
    """

    def __init__(self, cfg: HMMRConfig, out_dim: int):
        super().__init__()
        self.iterations = cfg.ief_iterations
        self.net = nn.Sequential(
            nn.Linear(cfg.feature_dim + out_dim, cfg.ief_hidden), nn.ReLU(inplace=True), nn.Dropout(cfg.ief_dropout),
            nn.Linear(cfg.ief_hidden, cfg.ief_hidden), nn.ReLU(inplace=True), nn.Dropout(cfg.ief_dropout),
            nn.Linear(cfg.ief_hidden, out_dim),
        )
        nn.init.xavier_uniform_(self.net[-1].weight, gain=0.01)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, phi: torch.Tensor, theta_start: torch.Tensor) -> torch.Tensor:
        theta = theta_start
        for _ in range(self.iterations):
            theta = theta + self.net(torch.cat([phi, theta], -1))
        return theta


class Hallucinator(nn.Module):
    """h: a single frame's phi ``(..., C)`` -> its hallucinated movie strip ``(..., C)``."""

    def __init__(self, cfg: HMMRConfig):
        super().__init__()
        d = cfg.feature_dim
        self.net = nn.Sequential(nn.Linear(d, d), nn.ReLU(inplace=True), nn.Linear(d, d), nn.ReLU(inplace=True), nn.Linear(d, d))
        nn.init.xavier_uniform_(self.net[-1].weight, gain=1e-3)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, phi: torch.Tensor) -> torch.Tensor:
        return phi + self.net(phi)


class PoseDiscriminator(nn.Module):
    """``(N, 23, 3, 3)`` relative joint rotations (SMPL joints 1-23, no global rotation) -> ``(N, 24)``
    scores: one per joint, then one for the whole pose (LSGAN: real -> 1, fake -> 0)."""

    def __init__(self, cfg: HMMRConfig):
        super().__init__()
        c = cfg.disc_conv
        self.shared = nn.Sequential(nn.Conv1d(9, c, 1), nn.ReLU(inplace=True), nn.Conv1d(c, c, 1), nn.ReLU(inplace=True))
        self.per_joint = nn.Conv1d(23 * c, 23, 1, groups=23)  # 23 separate c -> 1 heads
        self.full = nn.Sequential(nn.Linear(23 * c, cfg.disc_hidden), nn.ReLU(inplace=True),
                                  nn.Linear(cfg.disc_hidden, cfg.disc_hidden), nn.ReLU(inplace=True),
                                  nn.Linear(cfg.disc_hidden, 1))

    def forward(self, rotmats: torch.Tensor) -> torch.Tensor:
        n = rotmats.shape[0]
        feats = self.shared(rotmats.reshape(n, 23, 9).transpose(1, 2))  # (N, c, 23)
        flat = feats.transpose(1, 2).reshape(n, -1)  # (N, 23 * c), joint-major
        per_joint = self.per_joint(flat[..., None])[..., 0]
        return torch.cat([per_joint, self.full(flat)], 1)


# -- the model ------------------------------------------------------------------------------------

@dataclass
class Predictions:
    """What :class:`HMMR` predicts for ``(B, T, C)`` inputs.

    theta: ``(B, T, 85)`` present frame; theta_dt[dt]: ``(B, T, 85)`` the pose of frame t + dt predicted
    at t (camera columns are placeholders: solve them with :func:`model.camera.optimal_camera`);
    phi / movie: ``(B, T, C)`` per-frame features and movie strips; theta_hal / theta_hal_dt / movie_hal:
    the same from the hallucinated movie strips (None without a hallucinator).
    """

    theta: torch.Tensor
    theta_dt: dict[int, torch.Tensor]
    phi: torch.Tensor
    movie: torch.Tensor
    theta_hal: torch.Tensor | None = None
    theta_hal_dt: dict[int, torch.Tensor] | None = None
    movie_hal: torch.Tensor | None = None


class HMMR(nn.Module):
    """f_movie + f_3D + dynamics heads + hallucinator over per-frame features ``phi`` ``(B, T, C)``.

    ``mean_theta`` ``(85,)``: the IEF start (camera ``init_camera``, the body model's mean pose with
    the global rotation set upright, its mean shape); a trainable parameter as in the official code.
    With ``cfg.temporal = False`` this is the single-frame baseline (Phi = phi, same regressors).
    """

    def __init__(self, cfg: HMMRConfig, mean_theta: torch.Tensor | None = None):
        super().__init__()
        self.cfg = cfg
        if mean_theta is None:
            mean_theta = torch.zeros(cfg.theta_dim)
            mean_theta[:3] = torch.tensor(cfg.init_camera)
            mean_theta[3] = torch.pi  # global rotation: upright when projected (official init)
        self.mean_theta = nn.Parameter(mean_theta.clone().float())
        self.encoder: nn.Module = KeypointEncoder(cfg) if cfg.encoder == "keypoints" else ResNet50()
        self.movie = TemporalEncoder(cfg) if cfg.temporal else nn.Identity()
        self.regressor = IEFRegressor(cfg, cfg.theta_dim)
        self.dt_heads = nn.ModuleDict({_key(dt): IEFRegressor(cfg, 72) for dt in cfg.delta_t})
        self.hallucinator = Hallucinator(cfg) if cfg.hallucinator else None

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        """Per-frame features: ``(B, T, 25, 3)`` keypoints or ``(B, T, 3, 224, 224)`` images -> ``(B, T, C)``."""
        b, t = inputs.shape[:2]
        return self.encoder(inputs.flatten(0, 1)).reshape(b, t, -1)

    def regress(self, movie: torch.Tensor) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """f_3D and the dynamics heads on ``(B, T, C)`` movie strips."""
        b, t, c = movie.shape
        flat = movie.reshape(b * t, c)
        theta = self.regressor(flat, self.mean_theta.expand(b * t, -1))
        theta_dt = {}
        for dt in self.cfg.delta_t:
            pose = self.dt_heads[_key(dt)](flat, theta[:, 3:75])
            cam = torch.tensor([1.0, 0.0, 0.0], device=theta.device, dtype=theta.dtype).expand(b * t, 3)
            theta_dt[dt] = torch.cat([cam, pose, theta[:, 75:]], 1).reshape(b, t, -1)
        return theta.reshape(b, t, -1), theta_dt

    def forward(self, inputs: torch.Tensor, hallucinate: bool = True) -> Predictions:
        """``hallucinate=False`` leaves the hallucinator's branch out (prediction on whole tracks needs
        only the movie strips)."""
        phi = self.encode(inputs)
        movie = self.movie(phi)
        theta, theta_dt = self.regress(movie)
        out = Predictions(theta=theta, theta_dt=theta_dt, phi=phi, movie=movie)
        if self.hallucinator is not None and hallucinate:
            out.movie_hal = self.hallucinator(phi)
            out.theta_hal, out.theta_hal_dt = self.regress(out.movie_hal)
        return out


def _key(dt: int) -> str:
    return f"future{dt}" if dt > 0 else f"past{-dt}"
