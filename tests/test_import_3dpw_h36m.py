"""3DPW sequence files and Human3.6M joint (CDF) and MoSh files, written here in those datasets'
formats with small synthetic values, through ``hmmr import 3dpw`` / ``hmmr import h36m``."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from cdflib.cdfwrite import CDF
from scipy.spatial.transform import Rotation
from typer.testing import CliRunner

from hmmr.cli import app
from hmmr.config import Settings
from warehouse.catalog import read_only_query
from warehouse.importers.h36m import H36M_JOINTS, H36mFormatError, import_h36m, read_joints
from warehouse.importers.pw3d import Pw3dFormatError, import_3dpw, read_3dpw


def stored(home: Path, sql: str) -> list[dict]:
    return read_only_query(Settings(home=home), sql).to_pylist()


def pw3d_file(path: Path, name: str, n: int, people: int, seed: int) -> dict:
    """A sequence file with 3DPW's keys and shapes (pickle protocol 2, as the Python 2 originals)."""
    rng = np.random.default_rng(seed)
    data = {
        "sequence": name,
        "betas": [rng.normal(size=300 if p == 0 else 10) for p in range(people)],
        "betas_clothed": [rng.normal(size=10) for _ in range(people)],
        "poses": [rng.normal(scale=0.3, size=(n, 72)) for _ in range(people)],
        "trans": [rng.normal(size=(n, 3)) for _ in range(people)],
        "poses_60Hz": [rng.normal(size=(2 * n, 72)) for _ in range(people)],
        "trans_60Hz": [rng.normal(size=(2 * n, 3)) for _ in range(people)],
        "jointPositions": [rng.normal(size=(n, 72)) for _ in range(people)],
        "poses2d": [rng.uniform(0, 1000, size=(n, 3, 18)) for _ in range(people)],
        "campose_valid": [rng.integers(0, 2, size=n).astype(np.uint8) for _ in range(people)],
        "cam_poses": np.stack([np.eye(4) + 0.01 * i for i in range(n)]),
        "cam_intrinsics": np.array([[1961.0, 0, 540], [0, 1969.0, 960], [0, 0, 1]]),
        "img_frame_ids": np.arange(n),
        "genders": ["m", "f"][:people],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=2)
    return data


def test_3dpw_sequence_files_one_sequence_per_person(tmp_path):
    root = tmp_path / "3DPW" / "sequenceFiles"
    two = pw3d_file(root / "test" / "downtown_walking_00.pkl", "downtown_walking_00", 12, 2, seed=1)
    one = pw3d_file(root / "train" / "courtyard_box_00.pkl", "courtyard_box_00", 7, 1, seed=2)
    home = tmp_path / "home"
    result = import_3dpw([tmp_path / "3DPW"], Settings(home=home))
    assert result.errors == []
    seq = stored(home, "SELECT * FROM mocap_sequences ORDER BY sequence_id")
    assert [(r["sequence_id"], r["person"], r["split"], r["n_frames"], r["fps"], r["gender"], r["subject"], r["skeleton"])
            for r in seq] == [
        ("3dpw:courtyard_box_00:0", 0, "train", 7, 30.0, "male", None, "smpl24"),
        ("3dpw:downtown_walking_00:0", 0, "test", 12, 30.0, "male", None, "smpl24"),
        ("3dpw:downtown_walking_00:1", 1, "test", 12, 30.0, "female", None, "smpl24")]
    assert json.loads(seq[1]["camera_intrinsics"]) == two["cam_intrinsics"].tolist()
    assert json.loads(seq[0]["joint_names"])[:3] == ["pelvis", "left_hip", "right_hip"]
    rows = stored(home, "SELECT * FROM mocap_frames WHERE sequence_id = '3dpw:downtown_walking_00:1' ORDER BY frame")
    assert [r["frame"] for r in rows] == list(range(12))
    r = rows[5]
    np.testing.assert_allclose(r["joints"], two["jointPositions"][1][5], rtol=1e-6)
    np.testing.assert_allclose(r["pose"], two["poses"][1][5], rtol=1e-6)
    np.testing.assert_allclose(r["trans"], two["trans"][1][5], rtol=1e-6)
    np.testing.assert_allclose(r["shape"], two["betas"][1], rtol=1e-6)
    np.testing.assert_allclose(np.reshape(r["cam_pose"], (4, 4)), two["cam_poses"][5], rtol=1e-6)
    assert [x["valid"] for x in rows] == two["campose_valid"][1].astype(bool).tolist()
    assert r["time_s"] == pytest.approx(5 / 30)
    first = stored(home, "SELECT shape FROM mocap_frames WHERE sequence_id = '3dpw:courtyard_box_00:0' AND frame = 0")[0]
    np.testing.assert_allclose(first["shape"], one["betas"][0][:10], rtol=1e-6)  # 300 betas: SMPL's first 10
    before = stored(home, "SELECT * EXCLUDE (imported_at) FROM mocap_sequences ORDER BY sequence_id")
    import_3dpw([root / "test" / "downtown_walking_00.pkl"], Settings(home=home))  # again: one copy
    assert stored(home, "SELECT * EXCLUDE (imported_at) FROM mocap_sequences ORDER BY sequence_id") == before
    assert stored(home, "SELECT count(*) AS n FROM mocap_frames")[0]["n"] == 12 + 12 + 7


class _Shell:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_3dpw_bad_files(tmp_path):
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"sequence": _Shell()}, protocol=2))
    with pytest.raises(Pw3dFormatError, match=r"evil.pkl: not a 3DPW sequence file \(refusing to unpickle .*system\)"):
        read_3dpw(tmp_path / "evil.pkl")
    (tmp_path / "other.pkl").write_bytes(pickle.dumps({"poses": [np.zeros((2, 72))]}, protocol=2))
    with pytest.raises(Pw3dFormatError, match="needs sequence, poses, trans, betas, jointPositions"):
        read_3dpw(tmp_path / "other.pkl")
    data = pw3d_file(tmp_path / "short.pkl", "short", 5, 1, seed=3)
    data["jointPositions"] = [np.zeros((4, 72))]
    (tmp_path / "short.pkl").write_bytes(pickle.dumps(data, protocol=2))
    with pytest.raises(Pw3dFormatError, match=r"jointPositions \(4, 72\)"):
        read_3dpw(tmp_path / "short.pkl")
    (tmp_path / "text.pkl").write_text("hello")
    res = CliRunner().invoke(app, ["import", "3dpw", str(tmp_path / "text.pkl"), "--home", str(tmp_path / "home")])
    assert res.exit_code == 1 and "not a 3DPW sequence file" in res.output and "Traceback" not in res.output


def cdf_file(path: Path, pose_mm: np.ndarray, variable: str = "Pose") -> None:
    """A D3_Positions file as Human3.6M ships it: one record, a (N, 96) array named Pose (millimetres)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    c = CDF(str(path), cdf_spec={"Majority": "row_major"})
    c.write_var({"Variable": variable, "Data_Type": CDF.CDF_DOUBLE, "Num_Elements": 1, "Rec_Vary": True,
                 "Dim_Sizes": list(pose_mm.shape)}, var_data=pose_mm[None])
    c.close()


def linear_joints(n: int, fps: float = 50.0):
    """Joints moving at constant speed (z-up, mm): linear interpolation to any rate is exact."""
    base = np.arange(32 * 3, dtype=np.float64).reshape(32, 3) * 10.0
    velocity = np.tile([100.0, -50.0, 20.0], (32, 1))  # mm / s
    t = np.arange(n) / fps
    return base, velocity, base[None] + velocity[None] * t[:, None, None]


def test_h36m_joints_and_mosh_paired_resampled_and_split(tmp_path):
    root = tmp_path / "h36m"
    base, vel, pose_mm = linear_joints(100)
    cdf_file(root / "S9" / "MyPoseFeatures" / "D3_Positions" / "Walking 1.cdf", pose_mm.reshape(100, 96))
    cdf_file(root / "S1" / "MyPoseFeatures" / "D3_Positions" / "Directions.cdf", pose_mm[:50].reshape(50, 96))
    axis = np.array([0.0, 0.6, 0.8])
    t = np.arange(100) / 50
    poses = np.zeros((100, 72))
    poses[:, 3:6] = axis * (0.5 * t)[:, None]  # left hip turning at 0.5 rad / s about one axis: slerp is exact
    (root / "mosh" / "S9").mkdir(parents=True)
    with open(root / "mosh" / "S9" / "Walking 1.pkl", "wb") as f:
        pickle.dump({"poses": poses[:98], "betas": np.arange(10) / 10, "trans": np.c_[t, 0 * t, -t][:98]}, f, protocol=2)
    (root / "mosh" / "S1").mkdir(parents=True)
    np.savez(root / "mosh" / "S1" / "Greeting_cam0_aligned.npz", new_poses=poses[:40], shape=np.ones(10), gender="neutral")
    home = tmp_path / "home"
    result = import_h36m([root], Settings(home=home))
    assert result.errors == []
    seq = {r["sequence_id"]: r for r in stored(home, "SELECT * FROM mocap_sequences")}
    assert {k: (r["subject"], r["trial"], r["split"], r["source_frames"], r["n_frames"], r["skeleton"]) for k, r in seq.items()} == {
        "h36m:S9:Walking 1": ("S9", "Walking 1", "test", 100, 59, "h36m32"),  # 98 paired frames at 50 fps: 0 .. 58 at 30
        "h36m:S1:Directions": ("S1", "Directions", "train", 50, 30, "h36m32"),
        "h36m:S1:Greeting:cam0": ("S1", "Greeting", "train", 40, 24, None)}
    assert "joints 100 frames, MoSh 98: kept the first 98" in seq["h36m:S9:Walking 1"]["notes"]
    assert json.loads(seq["h36m:S9:Walking 1"]["joint_names"]) == list(H36M_JOINTS)
    assert json.loads(seq["h36m:S9:Walking 1"]["joint_parents"])[16] == 12  # LeftShoulder under Spine1
    assert seq["h36m:S1:Greeting:cam0"]["gender"] == "neutral"

    rows = stored(home, "SELECT * FROM mocap_frames WHERE sequence_id = 'h36m:S9:Walking 1' ORDER BY frame")
    k = 17
    tk = k / 30
    expected_mm = base + vel * tk  # z-up millimetres at time k / 30
    expected = np.stack([expected_mm[:, 0], expected_mm[:, 2], -expected_mm[:, 1]], -1) / 1000  # y-up metres
    np.testing.assert_allclose(np.reshape(rows[k]["joints"], (32, 3)), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(rows[k]["pose"][3:6], axis * 0.5 * tk, atol=1e-6)
    np.testing.assert_allclose(rows[k]["trans"], [tk, 0, -tk], atol=1e-6)
    np.testing.assert_allclose(rows[k]["shape"], np.arange(10) / 10, atol=1e-6)
    assert rows[k]["cam_pose"] is None and rows[k]["valid"] is None
    only_smpl = stored(home, "SELECT joints, pose FROM mocap_frames WHERE sequence_id = 'h36m:S1:Greeting:cam0' AND frame = 3")[0]
    assert only_smpl["joints"] is None
    assert Rotation.from_rotvec(np.reshape(only_smpl["pose"], (24, 3))).magnitude()[1] == pytest.approx(0.5 * 3 / 30, abs=1e-6)
    sides = stored(home, "SELECT subject, count(DISTINCT split) AS n FROM mocap_sequences GROUP BY subject")
    assert all(r["n"] == 1 for r in sides)


def test_h36m_bad_files_are_reported_and_skipped(tmp_path):
    root = tmp_path / "h36m"
    _, _, pose_mm = linear_joints(10)
    cdf_file(root / "S5" / "MyPoseFeatures" / "D3_Positions" / "Eating.cdf", pose_mm.reshape(10, 96))
    cdf_file(root / "S5" / "MyPoseFeatures" / "D3_Positions" / "Angles.cdf", np.zeros((10, 78)), variable="Angles")
    (root / "S6").mkdir()
    (root / "S6" / "Phoning.pkl").write_bytes(pickle.dumps({"joints": np.zeros(3)}, protocol=2))
    (root / "nobody.npz").write_bytes(b"not a zip")
    with pytest.raises(H36mFormatError, match="not a Human3.6M D3_Positions file"):
        read_joints(root / "S5" / "MyPoseFeatures" / "D3_Positions" / "Angles.cdf")
    res = CliRunner().invoke(app, ["import", "h36m", str(root), "--home", str(tmp_path / "home")], env={"COLUMNS": "200"})
    assert res.exit_code == 1, res.output
    assert "1 sequences stored, 3 skipped" in res.output and "Traceback" not in res.output
    assert "Angles.cdf: not a Human3.6M D3_Positions file" in res.output
    assert "Phoning.pkl: not a MoSh parameter file (needs poses and betas; has joints)" in res.output
    assert "nobody.npz: no S<n> subject folder" in res.output
    assert stored(tmp_path / "home", "SELECT sequence_id, split FROM mocap_sequences") == [
        {"sequence_id": "h36m:S5:Eating", "split": "train"}]
