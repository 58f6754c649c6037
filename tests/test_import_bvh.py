"""Real CMU BVH files (tests/data/cmu_bvh: 02_01 MotionBuilder-friendly with its T-pose frame, 131_01
3dsMax-friendly without) through the reader, forward kinematics, resampling and ``hmmr import bvh``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation, Slerp
from typer.testing import CliRunner

from hmmr.cli import app
from hmmr.config import Settings
from warehouse.catalog import read_only_query
from warehouse.importers.bvh import CMU_SCALE, BvhFormatError, import_bvh, read_bvh, read_bvh_file, resample
from warehouse.mocap.split import assign_splits

DATA = Path(__file__).parent / "data" / "cmu_bvh"
WALK, MJ = DATA / "02_01.bvh", DATA / "131_01.bvh"


def raw_frames(path: Path) -> np.ndarray:
    """The MOTION lines of a BVH file as numbers, read without the reader under test."""
    lines = path.read_text().split("MOTION")[1].strip().splitlines()[2:]
    return np.array([[float(v) for v in line.split()] for line in lines])


def rot(axis: str, degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    return {"x": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]), "y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
            "z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])}[axis]


def zyx(values) -> np.ndarray:
    """A BVH 'Zrotation Yrotation Xrotation' triple (degrees) as a matrix: Rz Ry Rx."""
    return rot("z", values[0]) @ rot("y", values[1]) @ rot("x", values[2])


def test_cmu_file_joints_frames_and_a_position_by_hand():
    raw = raw_frames(WALK)
    assert raw.shape == (344, 96)
    read = read_bvh_file(WALK)
    m = read.motion
    assert (read.frames_in_file, read.rest_frame_dropped, read.scale) == (344, True, CMU_SCALE)
    assert m.n_joints == 31 and m.n_frames == 343 and m.fps == 120.0
    assert m.names[:6] == ("Hips", "LHipJoint", "LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase")
    assert m.names[m.parents[2]] == "LHipJoint" and m.parents[0] == -1
    P = m.positions()
    assert P.shape == (343, 31, 3)
    k = 100  # motion frame k is file line k + 2 (line 1 is the T-pose)
    v = raw[k + 1]
    np.testing.assert_allclose(P[k, 0], v[0:3] * 0.056444, atol=1e-12)
    # LeftUpLeg: OFFSET 1.65674 -1.80282 0.62477 below LHipJoint (OFFSET 0 0 0, channels 6-8) below Hips (3-5)
    hips, lhip = zyx(v[3:6]), zyx(v[6:9])
    expected = v[0:3] * 0.056444 + hips @ lhip @ (np.array([1.65674, -1.80282, 0.62477]) * 0.056444)
    np.testing.assert_allclose(P[k, 2], expected, atol=1e-12)
    # LeftLeg, one level further down
    leg = expected + hips @ lhip @ zyx(v[9:12]) @ (np.array([2.59720, -7.13576, 0.0]) * 0.056444)
    np.testing.assert_allclose(P[k, 3], leg, atol=1e-12)
    # bones keep their length in every frame; feet stay near the floor (y-up, metres)
    np.testing.assert_allclose(np.linalg.norm(P[:, 3] - P[:, 2], axis=-1), np.linalg.norm([2.59720, -7.13576, 0]) * CMU_SCALE)
    assert 0.0 < P[:, :, 1].min() < 0.05 and 1.2 < P[:, :, 1].max() < 1.8


def test_file_without_a_t_pose_keeps_every_frame():
    raw = raw_frames(MJ)
    read = read_bvh_file(MJ)
    assert (read.frames_in_file, read.rest_frame_dropped, read.motion.n_frames) == (994, False, 994)
    assert read.motion.names[2] == "LeftHip"  # the 3dsMax-friendly names of the same skeleton
    np.testing.assert_allclose(read.motion.positions()[0, 0], raw[0, :3] * CMU_SCALE)
    # the T-pose is told by its values: with it dropped or kept on request, frames agree
    kept = read_bvh_file(WALK, drop_rest_frame=False)
    assert kept.motion.n_frames == 344
    np.testing.assert_allclose(kept.motion.positions()[1:], read_bvh(WALK).positions())


SMALL_CM = """HIERARCHY
ROOT pelvis
{
  OFFSET 0 0 0
  CHANNELS 6 Zposition Xposition Yposition Xrotation Yrotation Zrotation
  JOINT chest
  {
    OFFSET 0 50 0
    CHANNELS 3 Yrotation Xrotation Zrotation
    End Site
    {
      OFFSET 0 60 0
    }
  }
  JOINT knee
  {
    OFFSET 10 -45 0
    CHANNELS 1 Xrotation
    JOINT ankle
    {
      OFFSET 0 -45 0
      CHANNELS 3 Zrotation Yrotation Xrotation
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.04
3 1 90 30 -20 10 15 25 -35 40 1 2 3
4 2 91 31.5 -20.25 10.5 15 25 -35 40 1 2 3
"""


def test_any_channel_order_units_from_height_and_up_axis(tmp_path):
    path = tmp_path / "small.bvh"
    path.write_text(SMALL_CM)
    read = read_bvh_file(path)  # 205 units tall, not CMU's joints: centimetres
    m = read.motion
    assert (read.scale, m.names, tuple(m.parents), m.fps, m.n_frames) == (0.01, ("pelvis", "chest", "knee", "ankle"), (-1, 0, 0, 2), 25.0, 2)
    assert read.end_sites == {"chest": pytest.approx(np.array([0, 0.6, 0]))}
    P = m.positions()
    root = np.array([1, 90, 3]) * 0.01  # Zposition Xposition Yposition = 3 1 90
    pelvis = rot("x", 30) @ rot("y", -20) @ rot("z", 10)
    np.testing.assert_allclose(P[0, 0], root)
    np.testing.assert_allclose(P[0, 1], root + pelvis @ [0, 0.5, 0])
    knee = root + pelvis @ [0.1, -0.45, 0]
    np.testing.assert_allclose(P[0, 2], knee)
    np.testing.assert_allclose(P[0, 3], knee + pelvis @ rot("x", 40) @ [0, -0.45, 0])
    assert not read.rest_frame_dropped  # whole degrees in both frames: not an added T-pose
    np.testing.assert_allclose(read_bvh(path, scale="mm").positions(), P / 10)
    np.testing.assert_allclose(read_bvh(path, scale=0.02).positions(), P * 2)
    # a z-up file turned y-up: (x, y, z) -> (x, z, -y)
    z_up = read_bvh(path, up="z").positions()
    np.testing.assert_allclose(z_up, np.stack([P[..., 0], P[..., 2], -P[..., 1]], -1), atol=1e-12)
    # 100 times taller: no unit fits, the error asks for one
    (tmp_path / "tall.bvh").write_text(SMALL_CM.replace("OFFSET 0 50 0", "OFFSET 0 5000 0"))
    with pytest.raises(BvhFormatError, match="cannot tell the length unit.*pass a scale"):
        read_bvh(tmp_path / "tall.bvh")
    assert read_bvh(tmp_path / "tall.bvh", scale="mm").n_joints == 4


def test_resample_round_trip_and_interpolation():
    m = read_bvh(MJ)
    m30 = resample(m, 30)
    assert (m30.fps, m30.n_frames) == (30.0, 249)  # 993 / 120 s: frames 0 .. 248 at k / 30
    np.testing.assert_allclose(m30.positions(), m.positions()[::4], atol=1e-12)  # 120 -> 30: every 4th frame
    back = resample(m30, 120)
    assert back.n_frames == 993
    err = np.linalg.norm(back.positions() - m.positions()[:993], axis=-1)
    assert err.mean() < 0.002 and err.max() < 0.04, (err.mean(), err.max())  # metres; fingers move fastest
    np.testing.assert_allclose(resample(back, 30).positions(), m30.positions(), atol=1e-9)  # 30 -> 120 -> 30 exact
    # an uneven ratio: frame k at k / 45 s, between input frames i and i + 1
    m45 = resample(m, 45)
    k = 37
    x = k / 45 * 120
    i, a = int(np.floor(x)), x - np.floor(x)
    np.testing.assert_allclose(m45.root_positions[k], (1 - a) * m.root_positions[i] + a * m.root_positions[i + 1])
    j = m.names.index("LeftKnee")
    slerp = Slerp([0, 1], Rotation.from_quat(m.rotations[i:i + 2, j]))
    assert (slerp([a]).inv() * Rotation.from_quat(m45.rotations[k, j])).magnitude()[0] < 1e-9


def test_bad_files_give_one_line_errors(tmp_path):
    cases = {
        "text.bvh": "just some text\n",
        "empty.bvh": "",
        "cut.bvh": WALK.read_text()[:200_000],
        "no_motion.bvh": WALK.read_text().split("MOTION")[0],
        "bad_value.bvh": WALK.read_text().replace("10.4194", "ten", 1),
        "bad_channel.bvh": WALK.read_text().replace("Xposition", "Wposition", 1),
    }
    expect = {"text.bvh": "not a BVH file", "empty.bvh": "not a BVH file", "cut.bvh": "file cut short",
              "no_motion.bvh": "not a BVH file", "bad_value.bvh": "not a number", "bad_channel.bvh": "unknown channel"}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(BvhFormatError, match=expect[name]) as exc:
            read_bvh(tmp_path / name)
        assert str(exc.value).startswith(str(tmp_path / name)) and "\n" not in str(exc.value)
    with pytest.raises(BvhFormatError, match="cannot read"):
        read_bvh(tmp_path / "missing.bvh")


def stored(home: Path, sql: str) -> list[dict]:
    return read_only_query(Settings(home=home), sql).to_pylist()


def test_import_twice_split_by_subject_and_stored_rows(tmp_path):
    home = tmp_path / "home"
    folder = tmp_path / "cmu" / "nested"
    folder.mkdir(parents=True)
    shutil.copy(WALK, folder / WALK.name)
    result = import_bvh([tmp_path / "cmu", MJ], Settings(home=home))
    assert result.errors == []
    assert [(s.sequence_id, s.subject, s.split, s.source_frames, s.n_frames) for s in result.sequences] == [
        ("cmu:02_01", "02", "train", 344, 86), ("cmu:131_01", "131", "test", 994, 249)]
    seq = stored(home, "SELECT * FROM mocap_sequences ORDER BY sequence_id")
    assert [(r["source"], r["trial"], r["fps"], r["source_fps"], r["skeleton"]) for r in seq] == [
        ("cmu", "01", 30.0, 120.0, "cmu"), ("cmu", "01", 30.0, 120.0, "cmu")]
    assert len(json.loads(seq[0]["joint_names"])) == 31 and json.loads(seq[0]["joint_parents"])[:3] == [-1, 0, 1]
    assert "dropped the T-pose frame 1" in seq[0]["notes"] and "T-pose" not in seq[1]["notes"]
    frames = stored(home, "SELECT * FROM mocap_frames WHERE sequence_id = 'cmu:02_01' ORDER BY frame")
    assert len(frames) == 86 and [f["frame"] for f in frames] == list(range(86))
    assert frames[10]["time_s"] == pytest.approx(10 / 30) and frames[10]["pose"] is None and frames[10]["valid"] is None
    # frame 10 at 30 fps is motion frame 40 at 120 fps, file line 42 (after the T-pose)
    np.testing.assert_allclose(frames[10]["joints"][:3], raw_frames(WALK)[41, :3] * CMU_SCALE, rtol=1e-6)
    np.testing.assert_allclose(np.reshape(frames[10]["joints"], (31, 3)), read_bvh(WALK).positions()[40], atol=1e-6)
    before = stored(home, "SELECT sequence_id, frame, joints FROM mocap_frames ORDER BY sequence_id, frame")

    again = import_bvh([MJ, folder / WALK.name], Settings(home=home))  # the same files again: one copy
    assert [s.split for s in again.sequences] == ["test", "train"]
    assert stored(home, "SELECT sequence_id, frame, joints FROM mocap_frames ORDER BY sequence_id, frame") == before
    assert stored(home, "SELECT count(*) AS n FROM mocap_sequences")[0]["n"] == 2
    sides = stored(home, "SELECT subject, count(DISTINCT split) AS n FROM mocap_sequences GROUP BY subject")
    assert all(r["n"] == 1 for r in sides)

    # an explicit held-out list moves the stored sequences too: 02 test, 131 train
    moved = import_bvh([WALK], Settings(home=home), test_subjects=["02"])
    assert moved.resplit == 2
    assert stored(home, "SELECT sequence_id, split FROM mocap_sequences ORDER BY 1") == [
        {"sequence_id": "cmu:02_01", "split": "test"}, {"sequence_id": "cmu:131_01", "split": "train"}]


def test_split_never_puts_a_subject_on_both_sides():
    subjects = [f"{i:02d}" for i in range(1, 145)]
    split = assign_splits("cmu", subjects)
    test = {s for s, side in split.items() if side == "test"}
    assert 0.15 < len(test) / len(subjects) < 0.35
    assert split == assign_splits("cmu", list(reversed(subjects)))  # not the order: the subject decides
    # subjects arriving over several imports keep the side they were given
    first = assign_splits("cmu", subjects[:50])
    later = assign_splits("cmu", subjects[50:], stored=first)
    assert {s: later[s] for s in first} == first and later == split
    assert assign_splits("cmu", ["01", "02", "12", "131"]) == {"01": "train", "02": "train", "12": "train", "131": "test"}
    assert set(assign_splits("cmu", ["02"]).values()) == {"test"}  # at least one held out
    assert assign_splits("h36m", ["S1", "S5", "S9", "S11"]) == {"S1": "train", "S5": "train", "S9": "test", "S11": "test"}
    assert assign_splits("cmu", ["01", "02"], stored={"131": "test"}, test_subjects=["02"]) == {
        "01": "train", "02": "test", "131": "train"}


def test_cli_imports_reports_and_skips_bad_files(tmp_path):
    home = tmp_path / "home"
    (tmp_path / "in").mkdir()
    shutil.copy(WALK, tmp_path / "in" / WALK.name)
    (tmp_path / "in" / "notes.bvh").write_text("these are notes\n")
    res = CliRunner().invoke(app, ["import", "bvh", str(tmp_path / "in"), "--fps", "60", "--home", str(home)],
                             env={"COLUMNS": "200"})
    assert res.exit_code == 1, res.output
    cells = [c.strip() for c in next(line for line in res.output.splitlines() if "cmu:02_01" in line).split("│")[1:-1]]
    assert cells == ["cmu:02_01", "02", "test", "344", "120", "172", "60"]  # the only subject: held out
    assert f"skipped: {tmp_path / 'in' / 'notes.bvh'}: not a BVH file" in res.output
    assert "1 sequences stored, 1 skipped" in res.output and "Traceback" not in res.output
    row = stored(home, "SELECT fps, n_frames, source_frames FROM mocap_sequences")[0]
    assert row == {"fps": 60.0, "n_frames": 172, "source_frames": 344}  # 342 / 120 s at 60 fps: 0 .. 171
    res = CliRunner().invoke(app, ["import", "bvh", str(WALK), "--scale", "furlong", "--home", str(home)])
    assert res.exit_code == 2 and "furlong" in res.output
