"""The training step: every head's loss, both optimisers, checkpoints that resume exactly."""

from __future__ import annotations

import pytest
import torch

from model.config import HMMRConfig
from model.skeleton import KeypointSkeleton
from model.train import CheckpointMismatch, Trainer

from .test_model_skeleton import _body

CFG = HMMRConfig(feature_dim=256, keypoint_hidden=256, ief_hidden=256, disc_hidden=128, group_norm_groups=32,
                 lr_encoder=1e-4)


def _skeleton() -> KeypointSkeleton:
    torch.manual_seed(1)
    reg = torch.zeros(25, 400)
    for k in range(25):
        reg[k, torch.randint(0, 400, (2,))] = 0.5
    return KeypointSkeleton(_body(), reg)


def _batch(seed: int = 0, b: int = 2, t: int = 20) -> dict:
    g = torch.Generator().manual_seed(seed)
    kps = torch.rand(b, t, 25, 3, generator=g) * 2 - 1
    kps[..., 2] = (kps[..., 2] > -0.6).float()
    return {"kps": kps}


def test_every_loss_present_and_finite():
    trainer = Trainer(CFG, _skeleton(), device=torch.device("cpu"), real_rotmats=torch.eye(3).expand(50, 24, 3, 3))
    out, fakes = trainer.losses(_batch())
    expected = {"kp", "kp_dt-5", "kp_dt+5", "hal_kp", "hal_kp_dt-5", "hal_kp_dt+5", "hallucinate", "const_shape",
                "shape_prior", "adversarial", "total"}
    assert set(out) == expected and all(torch.isfinite(v) for v in out.values())
    assert len(fakes) == 6 and fakes[0].shape == (40, 24, 3, 3)
    logged = trainer.step(_batch())
    assert "d_loss" in logged and trainer.step_count == 1
    joints = torch.randn(2, 20, 14, 3)
    with_3d = _batch() | {"joints_3d": joints, "has_3d": torch.tensor([True, False]),
                          "pose": torch.zeros(2, 20, 72), "shape": torch.zeros(2, 10), "has_smpl": torch.tensor([False, True])}
    out3d, _ = trainer.losses(with_3d)
    assert {"joints_3d", "joints_3d_dt+5", "smpl", "smpl_dt-5", "hal_joints_3d"} <= set(out3d)


def test_steps_lower_the_keypoint_loss():
    torch.manual_seed(0)
    trainer = Trainer(CFG, _skeleton(), device=torch.device("cpu"))
    batch = _batch()
    first = trainer.step(batch)["kp"]
    for _ in range(30):
        last = trainer.step(batch)["kp"]
    assert last < 0.9 * first  # random targets on a random body: the real-track overfit is in test_train_flow


def test_checkpoint_resumes_to_the_same_next_loss(tmp_path):
    torch.manual_seed(0)
    a = Trainer(CFG, _skeleton(), device=torch.device("cpu"))
    for i in range(3):
        a.step(_batch(i))
    a.save(tmp_path / "ckpt.pt", extra={"epoch": 7})
    expected = a.step(_batch(3))
    b = Trainer(CFG, _skeleton(), device=torch.device("cpu"))
    assert b.load(tmp_path / "ckpt.pt") == {"epoch": 7} and b.step_count == 3
    assert b.step(_batch(3)) == expected  # dropout draws included: the RNG state is in the checkpoint
    other = Trainer(CFG.model_copy(update={"ief_iterations": 2}), _skeleton(), device=torch.device("cpu"))
    with pytest.raises(CheckpointMismatch, match="ief_iterations"):
        other.load(tmp_path / "ckpt.pt")
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(CheckpointMismatch, match="not a readable checkpoint"):
        b.load(tmp_path / "junk.pt")
