"""One HMMR training step and its state: losses of every head, two optimisers, checkpoints.

Plain functions and a class with no Prefect and no file formats other than checkpoints; the ``train``
flow (``flows/train.py``) feeds it batches from the warehouse and logs what it returns.

A batch is a dict of tensors (the warehouse ``WindowDataset`` items, stacked):

* ``kps`` ``(B, T, 25, 3)``: HMMR-25 keypoints in the 224 crop normalised to [-1, 1], and confidence;
* ``images`` ``(B, T, 3, 224, 224)``: the RGB crops in [0, 1], for the ResNet-50 encoder;
* optional 3D supervision: ``joints_3d`` ``(B, T, 14, 3)`` LSP joints (ankles in slots 0 and 5), metres,
  with ``has_3d`` ``(B,)``, and SMPL
  parameters ``pose`` ``(B, T, 72)`` / ``shape`` ``(B, 10)`` with ``has_smpl`` ``(B,)``.

Real poses for the adversarial prior (``real_rotmats`` ``(M, 24, 3, 3)``, mocap) are optional: without
them the discriminator is not trained and the adversarial term is left out (logged as absent).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from smplx.lbs import batch_rodrigues

from model import losses
from model.camera import optimal_camera, project
from model.config import HMMRConfig
from model.networks import HMMR, PoseDiscriminator, Predictions
from model.skeleton import KeypointSkeleton
from pose_harvest.keypoints import HMMR25_TO_LSP14

CHECKPOINT_VERSION = 1


class CheckpointMismatch(ValueError):
    """A checkpoint written for another model configuration (or another program)."""


def pick_device(requested: str = "auto") -> torch.device:
    """``cuda`` when available (or asked for), else ``cpu``."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


@dataclass
class _Frames:
    """Predictions of one head over a batch, with the body model evaluated: thetas ``(B, T, 85)``,
    keypoints ``(B, T, 25, 3)`` metres, rotmats ``(B, T, 24, 3, 3)``."""

    theta: torch.Tensor
    kps3d: torch.Tensor
    rotmats: torch.Tensor

    @property
    def shape(self) -> torch.Tensor:
        return self.theta[..., 75:]


@dataclass
class Trainer:
    """The model, its discriminator, their optimisers and the step counter.

    ``skeleton``: the body model reduced to keypoints (:class:`model.skeleton.KeypointSkeleton`).
    ``mean_theta`` ``(85,)``: the IEF start (see :class:`model.networks.HMMR`).
    """

    cfg: HMMRConfig
    skeleton: KeypointSkeleton
    device: torch.device = field(default_factory=pick_device)
    mean_theta: torch.Tensor | None = None
    real_rotmats: torch.Tensor | None = None

    def __post_init__(self):
        self.model = HMMR(self.cfg, self.mean_theta).to(self.device)
        self.disc = PoseDiscriminator(self.cfg).to(self.device)
        self.skeleton = self.skeleton.to(self.device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=self.cfg.lr_encoder, weight_decay=self.cfg.weight_decay)
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=self.cfg.lr_discriminator, weight_decay=self.cfg.weight_decay)
        self.step_count = 0
        self.amp = self.device.type == "cuda"  # mixed precision (bfloat16) on GPU

    def inputs(self, batch: dict) -> torch.Tensor:
        """What the per-frame encoder reads: ``images`` ``(B, T, 3, 224, 224)`` for the ResNet-50,
        else the keypoints."""
        return batch["images"] if self.cfg.encoder == "resnet50" else batch["kps"]

    # -- losses --------------------------------------------------------------------------------
    def _frames(self, theta: torch.Tensor) -> _Frames:
        b, t = theta.shape[:2]
        kps3d, rotmats = self.skeleton(theta[..., 75:].reshape(b * t, 10).float(), theta[..., 3:75].reshape(b * t, 72).float())
        return _Frames(theta, kps3d.reshape(b, t, -1, 3), rotmats.reshape(b, t, 24, 3, 3))

    def _visible(self, kps: torch.Tensor) -> torch.Tensor:
        """Targets with the confidence replaced by the 0/1 visibility HMMR uses."""
        return torch.cat([kps[..., :2], (kps[..., 2:] >= self.cfg.visible_conf).to(kps.dtype)], -1)

    def _head_losses(self, frames: _Frames, gt: dict, dt: int, out: dict, prefix: str) -> None:
        """Keypoint (and 3D) losses of one head. ``dt = 0``: the present with its own camera; else the
        prediction at t is compared with frame t + dt through the closed-form camera."""
        w = self.cfg.weights
        kps = self._visible(gt["kps"])
        pred_sl = slice(None) if dt == 0 else (slice(0, -dt) if dt > 0 else slice(-dt, None))
        gt_sl = slice(None) if dt == 0 else (slice(dt, None) if dt > 0 else slice(0, dt))
        pts, target = frames.kps3d[:, pred_sl], kps[:, gt_sl]
        if dt == 0:
            x = project(pts, frames.theta[:, pred_sl, :3])
            out[f"{prefix}kp"] = w.kp * losses.keypoint_l1(x, target)
        else:
            cam = optimal_camera(pts[..., :2], target[..., :2], target[..., 2] > 0, self.cfg.optcam_scale)
            out[f"{prefix}kp_dt{dt:+d}"] = w.kp_dt * losses.keypoint_l1(project(pts, cam), target)
        if "joints_3d" in gt and gt["has_3d"].any():
            n = pts.shape[0] * pts.shape[1]
            has = gt["has_3d"][:, None].expand(-1, pts.shape[1]).reshape(n)
            out[f"{prefix}joints_3d{_dt(dt)}"] = w.joints_3d * losses.joints_3d(
                pts[..., HMMR25_TO_LSP14, :].reshape(n, 14, 3), gt["joints_3d"][:, gt_sl].reshape(n, 14, 3), has)
        if "pose" in gt and gt["has_smpl"].any():
            t = pts.shape[1]
            gt_rot = batch_rodrigues(gt["pose"][:, gt_sl].reshape(-1, 3)).reshape(-1, 24, 3, 3)
            has = gt["has_smpl"][:, None].expand(-1, t).reshape(-1)
            gt_shape = gt["shape"][:, None].expand(-1, t, -1).reshape(-1, 10)
            out[f"{prefix}smpl{_dt(dt)}"] = w.smpl * losses.smpl_params(
                frames.rotmats[:, pred_sl].reshape(-1, 24, 3, 3), gt_rot, frames.shape[:, pred_sl].reshape(-1, 10), gt_shape, has)

    def losses(self, batch: dict, pred: Predictions | None = None) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
        """Weighted encoder losses (``total`` is their sum) and the predicted rotations the
        discriminator judges."""
        pred = pred if pred is not None else self.model(self.inputs(batch))
        w = self.cfg.weights
        out: dict[str, torch.Tensor] = {}
        fakes = []
        heads = [("", pred.theta, pred.theta_dt)]
        if pred.theta_hal is not None:
            heads.append(("hal_", pred.theta_hal, pred.theta_hal_dt))
            out["hallucinate"] = w.hallucinate * losses.hallucination(pred.movie_hal, pred.movie)
        shapes = []
        for prefix, theta, theta_dt in heads:
            present = self._frames(theta)
            self._head_losses(present, batch, 0, out, prefix)
            fakes.append(present.rotmats.reshape(-1, 24, 3, 3))
            shapes.append(present.shape.reshape(-1, 10))
            for dt, theta_k in theta_dt.items():
                frames = self._frames(theta_k)
                self._head_losses(frames, batch, dt, out, prefix)
                fakes.append(frames.rotmats.reshape(-1, 24, 3, 3))
            if prefix == "":
                out["const_shape"] = w.const_shape * losses.const_shape(present.shape)
        out["shape_prior"] = w.shape_prior * losses.shape_prior(torch.cat(shapes))
        if self.real_rotmats is not None:
            scores = self.disc(torch.cat(fakes)[:, 1:])
            out["adversarial"] = w.adversarial * losses.adversarial_generator(scores)
        out["total"] = sum(out.values())
        return out, fakes

    # -- one step ------------------------------------------------------------------------------
    def step(self, batch: dict) -> dict[str, float]:
        """One optimisation step of the encoder (and of the discriminator when real poses exist).
        Returns every loss as a float, and ``d_loss`` when the discriminator trained."""
        self.model.train()
        batch = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            pred = self.model(self.inputs(batch))
            out, fakes = self.losses(batch, pred)
        self.opt.zero_grad(set_to_none=True)
        out["total"].backward()
        self.opt.step()
        logged = {k: float(v.detach()) for k, v in out.items()}
        if self.real_rotmats is not None:
            fake = torch.cat(fakes).detach()[:, 1:]
            idx = torch.randint(0, len(self.real_rotmats), (len(fake),), device=self.real_rotmats.device)
            real = self.real_rotmats[idx].to(self.device)[:, 1:]
            d_loss = losses.adversarial_discriminator(self.disc(real), self.disc(fake))
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
            logged["d_loss"] = float(d_loss.detach())
        self.step_count += 1
        return logged

    # -- checkpoints ---------------------------------------------------------------------------
    def save(self, path: Path, extra: dict | None = None) -> None:
        """Write everything a resumed run needs (weights, optimisers, step, RNG states), atomically."""
        state = {
            "version": CHECKPOINT_VERSION, "config": self.cfg.model_dump(mode="json"), "step": self.step_count,
            "model": self.model.state_dict(), "disc": self.disc.state_dict(),
            "opt": self.opt.state_dict(), "opt_d": self.opt_d.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
            "extra": extra or {},
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(state, tmp)
        tmp.replace(path)

    def load(self, path: Path) -> dict:
        """Restore a checkpoint written by :meth:`save`; returns its ``extra``. Refuses one made with
        another configuration (:class:`CheckpointMismatch`)."""
        state = read_checkpoint(path)
        if state["config"] != self.cfg.model_dump(mode="json"):
            diff = {k: (v, state["config"].get(k)) for k, v in self.cfg.model_dump(mode="json").items() if state["config"].get(k) != v}
            raise CheckpointMismatch(f"{path} was trained with another configuration: (this run, checkpoint) {diff}")
        self.model.load_state_dict(state["model"])
        self.disc.load_state_dict(state["disc"])
        self.opt.load_state_dict(state["opt"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.step_count = state["step"]
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        return state["extra"]


def read_checkpoint(path: Path, *, mmap: bool = False) -> dict:
    """The raw checkpoint dict, checked to be an hmmr checkpoint of a known version. ``mmap``: map
    the tensors from the file instead of reading them (for a look at ``extra`` or ``step`` of a
    paper-size checkpoint, ~1 GB with its optimiser state, without reading it)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False, mmap=mmap)
    except Exception as exc:  # torch raises many kinds for a file that is not a checkpoint
        raise CheckpointMismatch(f"{path} is not a readable checkpoint: {exc}") from exc
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION or "config" not in state:
        raise CheckpointMismatch(f"{path} is not an hmmr checkpoint (version {CHECKPOINT_VERSION})")
    return state


def _dt(dt: int) -> str:
    return "" if dt == 0 else f"_dt{dt:+d}"
