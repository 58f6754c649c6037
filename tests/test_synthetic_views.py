"""Synthetic views of fitted CMU mocap: the pinhole camera, the measured detector noise, the views as
curated tracks with 3D ground truth in the warehouse, and 3D through WindowDataset and training batches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from hmmr.cli import app
from hmmr.config import Settings
from model.camera import optimal_camera, project
from model.fit import epoch_batches
from pose_harvest.detector_noise import MEDIAPIPE_NOISE, TrackSample, apply_noise, measure_noise
from pose_harvest.keypoints import HMMR25, HMMR25_TO_LSP14, LSP14_FLIP
from pose_harvest.synthetic_views import MIN_CLEARANCE_M, CameraRanges, PinholeCamera, look_at, sample_camera
from warehouse.catalog import read_only_query
from warehouse.crops import Augment
from warehouse.torch_dataset import WindowDataset

from .test_body_model import body_home  # noqa: F401  (the session's built open body model)

DATA = Path(__file__).parent / "data"
SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def test_projection_matches_a_hand_computed_pinhole():
    """A camera at (0, 1, -4) looking at (0, 1, 0): its right is world -x, its down world -y."""
    rot = look_at(np.array([0.0, 1.0, -4.0]), np.array([0.0, 1.0, 0.0]))
    assert np.allclose(rot, [[-1, 0, 0], [0, -1, 0], [0, 0, 1]])
    cam = PinholeCamera(rot, np.array([0.0, 1.0, -4.0]), 1000.0, 1280, 720)
    # (0.5, 2, 0) is (-0.5, -1, 4) in the camera: u = 1000 * -0.5 / 4 + 639.5, v = 1000 * -1 / 4 + 359.5
    uv = cam.project(np.array([[0.5, 2.0, 0.0], [0.0, 1.0, 4.0], [0.0, 1.0, -4.2]]))
    assert np.allclose(uv[0], [514.5, 109.5]) and np.allclose(uv[1], [639.5, 359.5])
    assert np.isnan(uv[2]).all()  # behind the camera


def test_cameras_stay_in_their_ranges():
    rng = np.random.default_rng(0)
    pelvis = np.stack([np.linspace(-2, 2, 100), np.full(100, 0.95), np.zeros(100)], 1)  # a 4 m walk
    r = CameraRanges()
    for _ in range(50):
        cam = sample_camera(pelvis, rng, r)
        dist = np.linalg.norm((cam.center - pelvis.mean(0))[[0, 2]])
        fov = np.rad2deg(2 * np.arctan(cam.width / 2 / cam.focal_px))
        assert r.distance_m[0] <= dist <= r.distance_m[1] and r.height_m[0] <= cam.center[1] <= r.height_m[1]
        assert r.fov_deg[0] - 1e-6 <= fov <= r.fov_deg[1] + 1e-6
        assert np.linalg.norm((pelvis - cam.center)[:, [0, 2]], axis=1).min() >= MIN_CLEARANCE_M
        assert np.allclose(cam.rotation @ cam.rotation.T, np.eye(3)) and np.isclose(np.linalg.det(cam.rotation), 1)
        assert cam.to_camera(pelvis)[:, 2].min() > 0  # the person is in front


def test_noise_is_what_was_measured_and_truncates():
    """Noise drawn from MEDIAPIPE_NOISE on still points measures back as the same jitter (within 30 %)
    and missing rates; points outside the image are dropped."""
    rng = np.random.default_rng(1)
    n = 900
    still = np.repeat(rng.uniform(200, 500, (1, 25, 2)), n, 0)
    height = np.full(n, 300.0)
    kps, has = apply_noise(still, height, 30.0, MEDIAPIPE_NOISE, rng, (1280, 720))
    again = measure_noise([TrackSample(kps, has, height, 30.0, (1280, 720))], "again")
    body = [HMMR25.index(j) for j in ("right_knee", "left_hip", "right_wrist", "left_elbow", "neck", "nose", "left_ankle")]
    ratio = np.array(again.jitter)[body] / np.array(MEDIAPIPE_NOISE.jitter)[body]
    assert ((0.85 < ratio) & (ratio < 1.3)).all(), ratio
    assert np.allclose(again.missing, MEDIAPIPE_NOISE.missing, atol=0.03)
    assert again.missing[HMMR25.index("head_top")] == 1.0  # MediaPipe has none
    shifted = still.copy()
    shifted[:, :5, 0] += 1300  # five keypoints beyond the right border
    cut, _ = apply_noise(shifted, height, 30.0, MEDIAPIPE_NOISE, rng, (1280, 720))
    assert (cut[:, :5] == 0).all() and (cut[:, 5:12, 2] > 0).mean() > 0.9


@pytest.fixture(scope="module")
def views_home(tmp_path_factory, body_home):  # noqa: F811
    """The two CMU test files imported, fitted (a short fit), filmed twice each; the real Pose2Sim
    OpenPose output imported next to them as 2D-only tracks."""
    from flows.mocap import fit_sequences
    from model.body.fit_joints import FitConfig
    from pose_harvest.detector_noise import MEDIAPIPE_NOISE
    from warehouse.mocap.fits import read_fits
    from warehouse.mocap.views import store_views

    home = tmp_path_factory.mktemp("views-home")
    (home / "body").symlink_to(body_home / "body", target_is_directory=True)
    runner = CliRunner()
    for args in (["import", "bvh", str(DATA / "cmu_bvh")],
                 ["import", "openpose", str(DATA / "openpose_pose2sim_cam01_body25b"), "--video", str(SAMPLES / "pose2sim_single_cam01.mp4")]):
        result = runner.invoke(app, [*args, "--home", str(home)])
        assert result.exit_code == 0, result.output
    settings = Settings(home=home)
    fit_sequences(settings, cfg=FitConfig(iterations=120))
    fits = read_fits(settings)
    stored = store_views(settings, fits, MEDIAPIPE_NOISE, views=2)
    return home, fits, stored


def test_views_are_curated_tracks_with_3d(views_home):
    home, fits, stored = views_home
    settings = Settings(home=home)
    assert [v.video_id for v in stored] == [f"mocap:{f.sequence_id}:view{k}" for f in fits for k in range(2)]
    videos = read_only_query(settings, "SELECT video_id, status, detector, width, height, fps, tags FROM videos "
                                       "WHERE video_id LIKE 'mocap:%' ORDER BY 1").to_pylist()
    assert len(videos) == 4 and {(v["status"], v["detector"], v["width"], v["height"], v["fps"]) for v in videos} == {
        ("ok", "synthetic+mediapipe", 1280, 720, 30.0)}
    # every frame of every curated track has its 3D ground truth, taken from the sequence's frames
    rows = read_only_query(settings, "SELECT t.video_id, t.track_id, t.n_frames, count(g.frame) AS n3d, "
                                     "bool_and(g.mocap_frame = g.frame) AS same_frame FROM tracks t "
                                     "LEFT JOIN track_frames_3d g USING (video_id, track_id) "
                                     "WHERE t.video_id LIKE 'mocap:%' GROUP BY ALL").to_pylist()
    assert rows and all(r["n3d"] == r["n_frames"] and r["same_frame"] for r in rows)
    windows = read_only_query(settings, "SELECT video_id, count(*) AS n FROM training_windows GROUP BY 1").to_pylist()
    by_video = {w["video_id"]: w["n"] for w in windows}
    kept = read_only_query(settings, "SELECT video_id, sum(n_frames - 19) AS n FROM curated_tracks WHERE n_frames >= 20 GROUP BY 1").to_pylist()
    assert {k["video_id"]: k["n"] for k in kept} == by_video and sum(1 for v in by_video if v.startswith("mocap:")) == 4


def test_split_keeps_each_subject_on_one_side(views_home):
    home, _, _ = views_home
    tags = [json.loads(r["tags"]) for r in read_only_query(Settings(home=home), "SELECT tags FROM videos WHERE video_id LIKE 'mocap:%'").to_pylist()]
    sides: dict[str, set] = {}
    for t in tags:
        assert t["source"] == "mocap" and t["sequence_id"].startswith("cmu:")
        sides.setdefault(t["subject"], set()).add(t["split"])
    assert sides == {"02": {"train"}, "131": {"test"}}
    # the camera that filmed each view is recorded with it
    assert {"rotation", "center", "focal_px", "width", "height"} <= set(tags[0]["camera"])


def test_windows_carry_3d_that_matches_their_keypoints(views_home):
    """Each 3D window's LSP joints, projected orthographically with the best scale and shift, land on
    its 2D keypoints, mirrored windows included (their joints mirrored and swapped with them); the
    wrong mirror does not fit. 2D-only windows carry zeros and has_3d False."""
    home, _, _ = views_home
    data = WindowDataset(Settings(home=home), "SELECT * FROM training_windows WHERE start_frame % 40 = 0", coords="crop",
                         augment=Augment(), seed=3)
    assert data.has_3d.any() and not data.has_3d.all()
    flips = set()
    for i in range(len(data)):
        item = data[i]
        if not data.has_3d[i]:
            assert not item["has_3d"] and not item["has_smpl"] and not item["joints_3d"].any()
            continue
        assert item["has_3d"] and item["has_smpl"] and item["shape"].abs().sum() > 0
        kps, joints = item["kps"][:, HMMR25_TO_LSP14], item["joints_3d"]
        vis = kps[..., 2] >= 0.1

        def residual(j):
            cam = optimal_camera(j[..., :2], kps[..., :2], vis, (1e-3, 1e3))
            return float(((project(j, cam) - kps[..., :2]).norm(dim=-1) * vis).sum() / vis.sum())

        wrong = joints[:, LSP14_FLIP] * torch.tensor([-1.0, 1.0, 1.0])
        assert residual(joints) < 0.06 and residual(joints) < residual(wrong), (data.window(i), data.jitter(i))
        flips.add(data.jitter(i).flip)
    assert flips == {True, False}


def test_batches_mix_3d_and_2d_and_evaluation_sees_3d(views_home):
    from flows.evaluate import track_ground_truth
    from model.fit import _mix

    home, _, _ = views_home
    data = WindowDataset(Settings(home=home), "SELECT * FROM training_windows", coords="crop")
    mix = _mix(data, 8, 0.5)
    batches = epoch_batches(len(data), 8, 0, 0, mix)
    assert batches and all(sum(data.has_3d[i] for i in b) == 4 for b in batches)
    assert len(batches) == min(data.has_3d.sum() // 4, (~data.has_3d).sum() // 4)
    tracks = read_only_query(Settings(home=home), "SELECT video_id, track_id, n_frames FROM curated_tracks ORDER BY video_id LIKE 'mocap:%'").to_pylist()
    real, synthetic = tracks[0], tracks[-1]
    kps, joints = track_ground_truth(Settings(home=home), synthetic["video_id"], synthetic["track_id"], synthetic["n_frames"])
    assert joints is not None and joints.shape == (synthetic["n_frames"], 14, 3) and kps.shape == (synthetic["n_frames"], 25, 3)
    assert track_ground_truth(Settings(home=home), real["video_id"], real["track_id"], real["n_frames"])[1] is None


def test_noise_command_measures_real_tracks(views_home):
    """hmmr mocap noise on the real OpenPose tracks (BODY_25B: it has a head top): plausible numbers,
    synthetic views left out."""
    home, _, _ = views_home
    result = CliRunner().invoke(app, ["mocap", "noise", "--home", str(home)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    frames = read_only_query(Settings(home=home), "SELECT sum(n_frames) AS n FROM curated_tracks WHERE video_id NOT LIKE 'mocap:%'")
    assert f"2 tracks, {frames.column('n')[0].as_py()} frames" in result.output and "MEDIAPIPE_NOISE = DetectorNoise(" in result.output
    assert "detector='openpose_json'" in result.output
    from warehouse.mocap.views import harvested_tracks

    tracks = harvested_tracks(Settings(home=home))
    assert len(tracks) == 2 and not harvested_tracks(Settings(home=home), "SELECT video_id, track_id FROM curated_tracks "
                                                                         "WHERE video_id NOT LIKE 'mocap:%'", synthetic=True)
    measured = measure_noise(tracks, "openpose_json")
    assert measured.missing[HMMR25.index("head_top")] < 0.5
    body = [HMMR25.index(j) for j in ("right_hip", "left_knee", "right_shoulder", "neck")]
    assert all(0.0005 < measured.jitter[j] < 0.05 for j in body), measured.jitter
    assert f"{measured.jitter[HMMR25.index('neck')]:.4f}" in result.output


def test_flipped_pose_is_the_mirrored_body(body_home):  # noqa: F811
    """The augmentation's mirror of the SMPL pose (flip_pose) poses the body as the mirror image of the
    original body (flip_joints_3d of its LSP joints), for the open model's mean shape."""
    from model.body import load_body_model
    from warehouse.crops import flip_joints_3d, flip_pose

    body = load_body_model(Settings(home=body_home))
    pose = np.random.default_rng(2).normal(0, 0.4, (4, 72)).astype(np.float32)
    with torch.no_grad():
        joints = body(torch.as_tensor(pose), torch.zeros(4, 10)).lsp_joints.numpy()
        mirrored = body(torch.as_tensor(flip_pose(pose)), torch.zeros(4, 10)).lsp_joints.numpy()
    assert np.abs(mirrored - flip_joints_3d(joints)).max() < 0.01
    assert np.abs(mirrored - joints).max() > 0.1  # a random pose is not its own mirror image
