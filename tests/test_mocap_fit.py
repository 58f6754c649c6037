"""The body-model fit to real CMU motion capture (tests/data/cmu_bvh), with the open body model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hmmr.cli import app
from hmmr.config import Settings
from model.body import load_body_model
from model.body.fit_joints import CMU_TO_SMPL, MocapSkeletonError, fit_joints, match_joints
from model.skeleton import KeypointSkeleton
from warehouse.catalog import read_only_query
from warehouse.importers.bvh import read_bvh, resample

from .test_body_model import body_home  # noqa: F401  (the session's built open body model)

CMU = Path(__file__).parent / "data" / "cmu_bvh"
LIMB = ("knee", "ankle", "elbow", "wrist")  # joints fitted without a placement correction


@pytest.fixture(scope="module")
def skeleton(body_home):  # noqa: F811
    return KeypointSkeleton.from_body_model(load_body_model(Settings(home=body_home)))


@pytest.fixture(scope="module", params=["02_01", "131_01"])
def fitted(request, skeleton):
    """A 3 s excerpt at 30 fps of each release (02_01: MotionBuilder-friendly names, 131_01: 3dsMax-friendly)."""
    motion = resample(read_bvh(CMU / f"{request.param}.bvh"), 30.0)
    positions = motion.positions()[:90]
    return request.param, motion, positions, fit_joints(skeleton, positions, motion.names)


def test_fit_error_is_under_30_mm(fitted):
    name, motion, positions, fit = fitted
    assert len(fit.matched) == len(CMU_TO_SMPL) == 21
    assert fit.mean_error_mm < 30, f"{name}: {fit.mean_error_mm:.1f} mm"
    per_joint = fit.per_joint_mm()
    limbs = {j: e for j, e in per_joint.items() if j.split("_", 1)[-1] in LIMB}
    assert len(limbs) == 8 and max(limbs.values()) < 30, limbs  # no correction helps these
    assert fit.raw_error_mm.mean() < 80  # the placement corrections are a few cm, not a different skeleton
    assert np.abs(fit.corrections).max() < 0.2
    # the shapes of what is stored
    n = len(positions)
    assert fit.pose.shape == (n, 72) and fit.trans.shape == (n, 3) and fit.betas.shape == (10,)
    assert fit.joints.shape == (n, 24, 3) and fit.keypoints.shape == (n, 25, 3)


def test_fitted_body_reproduces_its_joints(fitted, body_home):  # noqa: F811
    """The stored pose, shape and translation give the stored joints through the full body model
    (smplx's forward), and the fitted motion is as smooth as the mocap."""
    import torch

    _, _, positions, fit = fitted
    body = load_body_model(Settings(home=body_home))
    n = len(fit.pose)
    with torch.no_grad():
        out = body(torch.as_tensor(fit.pose, dtype=torch.float32), torch.as_tensor(fit.betas, dtype=torch.float32).expand(n, 10),
                   torch.as_tensor(fit.trans, dtype=torch.float32))
    assert np.abs(out.joints.numpy() - fit.joints).max() < 1e-4
    assert np.abs(out.keypoints.numpy() - fit.keypoints).max() < 1e-4
    acc_fit = np.linalg.norm(np.diff(fit.joints[:, [4, 5, 18, 19]], 2, axis=0), axis=-1).mean()
    acc_mocap = np.linalg.norm(np.diff(positions[:, [3, 8, 19, 26]], 2, axis=0), axis=-1).mean()  # knees, elbows
    assert acc_fit < 1.5 * acc_mocap


def test_both_cmu_releases_are_matched_and_others_refused():
    mb = read_bvh(CMU / "02_01.bvh").names
    mx = read_bvh(CMU / "131_01.bvh").names
    (m1, c1), (m2, c2) = match_joints(mb), match_joints(mx)
    assert [c.smpl for c in m1] == [c.smpl for c in m2]
    by_smpl = {c.smpl: (mb[i], mx[j]) for c, i, j in zip(m1, c1, c2)}
    assert by_smpl["left_shoulder"] == ("LeftArm", "LeftShoulder") and by_smpl["neck"] == ("Neck1", "Neck")
    assert by_smpl["right_hand"] == ("RightHandIndex1", "RFingers") and by_smpl["left_foot"] == ("LeftToeBase", "LeftToe")
    with pytest.raises(MocapSkeletonError, match="no joint Hips"):
        match_joints(["root", "spine"])


def test_fit_command_stores_and_replaces(tmp_path, body_home):  # noqa: F811
    """hmmr import bvh then hmmr mocap fit: one mocap_fits row and one mocap_fit_frames row per
    frame; fitting again replaces them."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "body").symlink_to(body_home / "body", target_is_directory=True)
    runner = CliRunner()
    assert runner.invoke(app, ["import", "bvh", str(CMU / "02_01.bvh"), "--home", str(home)]).exit_code == 0
    for _ in range(2):
        result = runner.invoke(app, ["mocap", "fit", "cmu:02_01", "--iterations", "120", "--home", str(home)])
        assert result.exit_code == 0, result.output
    settings = Settings(home=home)
    fits = read_only_query(settings, "SELECT * FROM mocap_fits").to_pylist()
    frames = read_only_query(settings, "SELECT count(*) AS n, max(error_mm) AS worst FROM mocap_fit_frames").to_pylist()[0]
    stored = read_only_query(settings, "SELECT n_frames FROM mocap_sequences").to_pylist()[0]["n_frames"]
    assert len(fits) == 1 and frames["n"] == stored == fits[0]["n_frames"] == 86
    f = fits[0]
    assert f["body_model"] == "open" and f["iterations"] == 180 and f["mean_error_mm"] < 30
    assert set(json.loads(f["joint_errors"])) == {c.smpl for c in CMU_TO_SMPL}
    assert set(json.loads(f["corrections"])) == {c.smpl for c in CMU_TO_SMPL if c.corrected}
    missing = runner.invoke(app, ["mocap", "fit", "cmu:99_99", "--home", str(home)])
    assert missing.exit_code == 1 and "no stored mocap sequence with joints: cmu:99_99" in missing.output
