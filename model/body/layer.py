"""``load_body_model``: SMPL when the user has the licensed file, else the open anny-derived model.

Both run through the same ``smplx.SMPLLayer`` (a stateless ``smplx.SMPL``) built with
``data_struct=Struct(**arrays)``; :class:`BodyModel` adds the HMMR-25 keypoints and takes HMMR's
72-number axis-angle pose, so code above it never knows which model it has.

Which model: ``smpl_path`` if given, else the environment variable ``HMMR_SMPL_PATH``, else the open
model cached at ``HMMR_HOME/body/open_smpl_v1.npz`` (derived from anny on first use, ~2-4 min).
An SMPL path may be the official ``.pkl`` (read without chumpy) or its ``hmmr body convert-smpl`` ``.npz``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import smplx
import torch
from smplx.lbs import batch_rodrigues
from smplx.utils import Struct

from model.body.keypoints import KeypointMap, lsp_joints, regress_keypoints, smpl_keypoint_map
from model.body.open_model import NUM_BETAS, build_open_model, open_model_path
from model.body.smpl_file import SmplFileError, load_smpl_npz, read_smpl_pickle

if TYPE_CHECKING:
    from hmmr.config import Settings

SMPL_PATH_ENV = "HMMR_SMPL_PATH"
NUM_JOINTS = 24


@dataclass(frozen=True)
class BodyOutput:
    """A posed body. Lengths in metres, in the model's frame (Y up, facing +Z) plus ``transl``."""

    vertices: torch.Tensor  #: (B, V, 3)
    joints: torch.Tensor  #: (B, 24, 3) SMPL-order kinematic joints
    keypoints: torch.Tensor  #: (B, 25, 3) HMMR-25 keypoints (heels in slots 0 and 5)
    rotmats: torch.Tensor  #: (B, 24, 3, 3) joint rotations, parent-relative (the discriminator's input)

    @property
    def lsp_joints(self) -> torch.Tensor:
        """(B, 14, 3) LSP joints (ankles in slots 0 and 5), for 3D losses and metrics."""
        return lsp_joints(self.keypoints)


class BodyModel(torch.nn.Module):
    """An SMPL-format body model with HMMR's keypoints: ``(pose, betas) -> BodyOutput``.

    Attributes: ``layer`` (the ``smplx.SMPLLayer``), ``kind`` (``"smpl"`` or ``"open"``), ``source``
    (the file), ``keypoint_source`` (which keypoint regressor), ``faces`` ``(F, 3)`` int64 buffer,
    ``mean_pose`` ``(72,)`` and ``mean_betas`` ``(10,)`` buffers: the rest pose and the mean shape.
    """

    def __init__(self, arrays: dict[str, np.ndarray], keypoint_map: KeypointMap, *, kind: str, source: Path, dtype: torch.dtype = torch.float32):
        super().__init__()
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a warning for every 10-beta model
            self.layer = smplx.SMPLLayer(
                model_path=str(source), data_struct=Struct(**arrays), num_betas=NUM_BETAS, dtype=dtype,
                vertex_ids=keypoint_map.landmark_vertex_ids(), use_hands=False, use_feet_keypoints=True,
            )
        self.kind, self.source, self.keypoint_source = kind, source, keypoint_map.source
        self.register_buffer("kp_vertex_weights", torch.as_tensor(keypoint_map.vertex_weights, dtype=dtype))
        self.register_buffer("kp_joint_weights", torch.as_tensor(keypoint_map.joint_weights, dtype=dtype))
        self.register_buffer("faces", torch.as_tensor(np.asarray(arrays["f"], dtype=np.int64)))
        self.register_buffer("mean_pose", torch.zeros(NUM_JOINTS * 3, dtype=dtype))
        self.register_buffer("mean_betas", torch.zeros(NUM_BETAS, dtype=dtype))

    @property
    def n_vertices(self) -> int:
        return int(self.layer.v_template.shape[0])

    def forward(self, pose: torch.Tensor, betas: torch.Tensor, transl: torch.Tensor | None = None) -> BodyOutput:
        """Pose and shape the body.

        Args:
            pose: ``(B, 72)`` axis-angle in radians (global rotation, then the 23 joints in SMPL
                order), or ``(B, 24, 3, 3)`` rotation matrices.
            betas: ``(B, 10)`` shape coefficients (0 = the mean shape).
            transl: ``(B, 3)`` metres, added to every output; None = 0.
        """
        batch = pose.shape[0]
        rotmats = pose if pose.dim() == 4 else batch_rodrigues(pose.reshape(-1, 3)).reshape(batch, NUM_JOINTS, 3, 3)
        out = self.layer(betas=betas, global_orient=rotmats[:, :1], body_pose=rotmats[:, 1:], transl=transl)
        joints = out.joints[:, :NUM_JOINTS]
        keypoints = regress_keypoints(self.kp_vertex_weights, self.kp_joint_weights, out.vertices, joints)
        return BodyOutput(vertices=out.vertices, joints=joints, keypoints=keypoints, rotmats=rotmats)


def _smpl_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(
            f"SMPL model file {path} not found. SMPL is licensed per user: register and download it from "
            "https://smpl.is.tue.mpg.de, then pass --smpl PATH or set HMMR_SMPL_PATH (unset it to use the open model)."
        )
    return read_smpl_pickle(path) if path.suffix == ".pkl" else load_smpl_npz(path)


def resolve_smpl_path(smpl_path: Path | str | None = None) -> Path | None:
    """The SMPL file to use: ``smpl_path``, else ``$HMMR_SMPL_PATH``, else None (the open model)."""
    chosen = smpl_path or os.environ.get(SMPL_PATH_ENV) or None
    return Path(chosen).expanduser() if chosen else None


def load_body_model(
    settings: Settings, smpl_path: Path | str | None = None, device: torch.device | str = "cpu", *, log: Callable[[str], None] = print
) -> BodyModel:
    """The body model to use (see the module docstring for which), on ``device``, float32.

    ``settings`` is an ``hmmr.config.Settings`` (its ``home`` holds the open model's cache). The open
    model is built on first use; ``log`` receives the build's progress lines.
    """
    path = resolve_smpl_path(smpl_path)
    if path is not None:
        arrays = _smpl_arrays(path)
        if arrays["weights"].shape[1] != NUM_JOINTS:
            raise SmplFileError(f"{path} has {arrays['weights'].shape[1]} joints: not SMPL (24), e.g. SMPL-H or SMPL-X")
        keypoint_map = smpl_keypoint_map(arrays["v_template"].shape[0], arrays.get("cocoplus_regressor"))
        model = BodyModel(arrays, keypoint_map, kind="smpl", source=path)
    else:
        path = open_model_path(settings.home)
        if not path.is_file():
            build_open_model(settings.home, log=log)
        arrays = load_smpl_npz(path)
        keypoint_map = KeypointMap(arrays["hmmr_keypoint_weights"], np.zeros((arrays["hmmr_keypoint_weights"].shape[0], NUM_JOINTS)),
                                   "anny COCO-17 + toes + heels regressor, shoulder mid-point neck, crown vertex")
        model = BodyModel(arrays, keypoint_map, kind="open", source=path)
    return model.to(device)


def open_model_facts(path: Path) -> dict:
    """The facts the open model's build measured (see ``OpenModelFacts``), read from its file."""
    with np.load(path, allow_pickle=False) as npz:
        return json.loads(str(npz["hmmr_build_facts"]))
