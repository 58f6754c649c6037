"""OpenPose: the JSON reader on the real Pose2Sim OpenPose output, layout detection, the import into the
warehouse, the exact command lines, and every way running OpenPose can fail.

There is no Docker daemon and no OpenPose build on these machines, so running OpenPose is tested up to
the process boundary: the programs started are small scripts standing where ``docker`` or
``openpose.bin`` would be. Each either prints the message the real program prints in that situation,
or (the success case) writes the real OpenPose JSON recorded for the sample video, as OpenPose's
``--write_json`` would.
"""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hmmr.cli import app
from hmmr.config import Settings
from pose_harvest import openpose_json as opj
from pose_harvest.detections import detect_video
from pose_harvest.detectors import DetectorError, get_detector
from pose_harvest.detectors.openpose import OpenPoseConfig, OpenPoseDetector, command
from pose_harvest.keypoints import BODY25, BODY25B, COCO18, HMMR25, convert
from pose_harvest.sources import video_id_for
from pose_harvest.video import probe
from warehouse.catalog import read_only_query

FIXTURE = Path(__file__).parent / "data" / "openpose_pose2sim_cam01_body25b"
TABLES = ("videos", "shots", "detections", "tracks", "track_frames")


def raw_people(frame: int) -> list[list[float]]:
    return [p["pose_keypoints_2d"] for p in json.loads((FIXTURE / f"cam01.{frame:04d}.json").read_text())["people"]]


def q(home: Path, sql: str) -> list[dict]:
    return read_only_query(Settings(home=home), sql).to_pylist()


def write_folder(folder: Path, frames: dict[int, list[np.ndarray]], name="{:012d}", prefix="clip_", suffix="_keypoints.json"):
    folder.mkdir(parents=True, exist_ok=True)
    for i, people in frames.items():
        body = {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": np.asarray(p).ravel().tolist()} for p in people]}
        (folder / f"{prefix}{name.format(i)}{suffix}").write_text(json.dumps(body))
    return folder


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


# -- reader ---------------------------------------------------------------------------------------

def test_reader_matches_the_raw_files():
    op = opj.read_folder(FIXTURE)
    assert op.layout is BODY25B and op.n_frames == 100 and op.missing == [] and op.first_frame == 0
    counts = [len(p) for p in op.people]
    assert counts.count(2) == 99 and counts[37] == 3
    for frame in (0, 37, 99):
        raw = raw_people(frame)
        np.testing.assert_array_equal(op.people[frame], np.array(raw, np.float32).reshape(len(raw), 25, 3))
    subject = op.people[0][0]
    assert (round(float(subject[subject[:, 2] > 0, 0].min())), round(float(subject[:, 0].max()))) == (269, 568)  # README: x 269-568
    assert subject[BODY25B.index("neck"), 2] > 0.5


def test_hmmr_mapping_keeps_heels_in_slots_0_and_5():
    op = opj.read_folder(FIXTURE)
    src, out = op.people[50][0], op.hmmr25()[50][0]
    for slot, name in ((0, "right_heel"), (5, "left_heel"), (23, "left_ankle"), (24, "right_ankle"),
                       (12, "neck"), (13, "head_top"), (14, "nose")):
        assert HMMR25.joints[slot] == name
        np.testing.assert_array_equal(out[slot], src[BODY25B.index(name)])


def test_layout_told_from_count_and_neck(tmp_path):
    op = opj.read_folder(FIXTURE)
    frames = {i: list(p) for i, p in enumerate(op.people[:20])}
    as_body25 = write_folder(tmp_path / "b25", {i: [convert(k, BODY25B, BODY25) for k in ps] for i, ps in frames.items()})
    as_coco = write_folder(tmp_path / "coco", {i: [convert(k, BODY25B, COCO18) for k in ps] for i, ps in frames.items()})
    assert opj.read_folder(as_body25).layout is BODY25
    assert opj.read_folder(as_coco).layout is COCO18
    assert opj.read_folder(FIXTURE, layout=BODY25).layout is BODY25  # told: no detection
    no_torso = np.zeros((25, 3), np.float32)
    no_torso[0] = [100, 100, 0.9]
    with pytest.raises(opj.OpenPoseFormatError, match="cannot tell BODY_25 from BODY_25B"):
        opj.read_folder(write_folder(tmp_path / "face", {0: [no_torso]}))
    with pytest.raises(opj.OpenPoseFormatError, match="layout coco18 has 18 keypoints"):
        opj.read_folder(FIXTURE, layout=COCO18)
    with pytest.raises(opj.OpenPoseFormatError, match="15 keypoints per person: expected 18"):
        opj.read_folder(write_folder(tmp_path / "odd", {0: [np.zeros((15, 3))]}))


def test_missing_files_empty_frames_and_openpose_names(tmp_path):
    """OpenPose's own names (clip_000000000012_keypoints.json), some files missing, one frame empty."""
    folder = tmp_path / "json"
    folder.mkdir()
    for i in range(100):
        if i not in (10, 11, 12, 98, 99):
            shutil.copy(FIXTURE / f"cam01.{i:04d}.json", folder / f"clip_{i:012d}_keypoints.json")
    (folder / "clip_000000000020_keypoints.json").write_text('{"version": 1.3, "people": []}')
    assert opj.frame_number(folder / "clip_000000000020_keypoints.json") == 20
    op = opj.read_folder(folder, n_frames=100)
    assert op.n_frames == 100 and op.missing == [10, 11, 12, 98, 99]
    counts = [len(p) for p in op.people]
    assert counts[10] == counts[20] == counts[99] == 0 and counts[21] == 2 and op.people[20].shape == (0, 25, 3)
    assert len(opj.read_folder(folder).people) == 98  # without the video's length: up to the last file
    (folder / "clip_000000000030_keypoints.json").write_text("<html>not json</html>")
    with pytest.raises(opj.OpenPoseFormatError, match="not OpenPose JSON"):
        opj.read_folder(folder)
    with pytest.raises(opj.OpenPoseFormatError, match="no OpenPose .json files"):
        opj.read_folder(tmp_path)


# -- import ---------------------------------------------------------------------------------------

def test_import_twice_gives_the_same_rows(samples, tmp_path):
    home = tmp_path / "home"
    video = samples / "pose2sim_single_cam01.mp4"
    args = ["import", "openpose", str(FIXTURE), "--video", str(video), "--home", str(home)]
    runner = CliRunner()
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    dump = {t: q(home, f"SELECT * EXCLUDE ({'harvested_at, run_id' if t == 'videos' else 'video_id'}) FROM {t} ORDER BY ALL") for t in TABLES}
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert {t: q(home, f"SELECT * EXCLUDE ({'harvested_at, run_id' if t == 'videos' else 'video_id'}) FROM {t} ORDER BY ALL") for t in TABLES} == dump

    v = q(home, "SELECT * FROM videos")
    assert len(v) == 1 and v[0]["video_id"] == video_id_for(video.resolve().as_uri())
    assert (v[0]["detector"], v[0]["status"], v[0]["n_frames"], v[0]["n_detections"]) == ("openpose_json", "ok", 100, 201)
    d = q(home, "SELECT kp_x, kp_y, kp_conf FROM detections WHERE frame = 0 ORDER BY det_idx")
    raw = np.array(raw_people(0)[0], np.float32).reshape(25, 3)
    assert d[0]["kp_x"][0] == raw[BODY25B.index("right_heel"), 0] and d[0]["kp_conf"][12] == raw[BODY25B.index("neck"), 2]
    kept = q(home, "SELECT n_frames FROM curated_tracks ORDER BY n_frames DESC")
    assert len(kept) == 2 and kept[0]["n_frames"] == 100  # subject and bystander, tracked as in a harvest


def test_import_refuses_to_overwrite_another_detector(samples, tmp_path, prefect_harness):
    from flows.harvest import harvest

    home = tmp_path / "home"
    home.mkdir()
    video = samples / "pose2sim_single_cam01.mp4"
    sources = home / "sources.txt"
    sources.write_text(f"{video}\n")
    harvest(sources=str(sources), home=str(home), progress=False)
    vid = q(home, "SELECT video_id FROM videos")[0]["video_id"]
    runner = CliRunner()
    refused = runner.invoke(app, ["import", "openpose", str(FIXTURE), "--video", vid, "--home", str(home)])
    assert refused.exit_code == 1 and "--replace" in refused.output and "mediapipe" in refused.output
    assert q(home, "SELECT detector FROM videos")[0]["detector"] == "mediapipe"
    done = runner.invoke(app, ["import", "openpose", str(FIXTURE), "--video", vid, "--replace", "--home", str(home)])
    assert done.exit_code == 0 and "replaced the rows from mediapipe" in done.output, done.output
    assert q(home, "SELECT count(*) AS n FROM detections")[0]["n"] == 201
    assert q(home, "SELECT count(*) AS n, max(detector) AS d FROM videos")[0] == {"n": 1, "d": "openpose_json"}
    unknown = runner.invoke(app, ["import", "openpose", str(FIXTURE), "--video", "url:nope", "--home", str(home)])
    assert unknown.exit_code == 1 and "neither a video file nor the video_id" in unknown.output
    too_long = tmp_path / "long"
    shutil.copytree(FIXTURE, too_long)
    shutil.copy(FIXTURE / "cam01.0000.json", too_long / "cam01.0150.json")
    wrong = runner.invoke(app, ["import", "openpose", str(too_long), "--video", vid, "--home", str(home)])
    assert wrong.exit_code == 1 and "wrong video?" in wrong.output


# -- running OpenPose -----------------------------------------------------------------------------

def test_exact_command_lines(tmp_path):
    video = tmp_path / "clips" / "a b.mp4"
    cfg = OpenPoseConfig(image="cmu/openpose:1.7", gpus="device=1", number_people_max=4)
    assert command(video, tmp_path / "out", cfg) == [
        "docker", "run", "--rm", "--gpus", "device=1",
        "-v", f"{tmp_path}/clips:/input:ro", "-v", f"{tmp_path}/out:/output",
        "cmu/openpose:1.7", "/openpose/build/examples/openpose/openpose.bin",
        "--video", "/input/a b.mp4", "--write_json", "/output", "--display", "0", "--render_pose", "0",
        "--model_pose", "BODY_25", "--net_resolution", "-1x368", "--number_people_max", "4",
    ]
    local = OpenPoseConfig(binary="/opt/openpose/openpose.bin", model_folder="/opt/openpose/models", gpus=None,
                           extra_args=["--face", "false"])
    assert command(video, tmp_path / "out", local) == [
        "/opt/openpose/openpose.bin", "--video", str(video), "--write_json", f"{tmp_path}/out",
        "--display", "0", "--render_pose", "0", "--model_pose", "BODY_25", "--net_resolution", "-1x368",
        "--number_people_max", "-1", "--face", "false", "--model_folder", "/opt/openpose/models",
    ]
    with pytest.raises(DetectorError, match="unsupported OpenPose model"):
        command(video, tmp_path, OpenPoseConfig(model_pose="MPI"))


def test_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("HMMR_OPENPOSE_IMAGE", "my/openpose:gpu")
    monkeypatch.setenv("HMMR_OPENPOSE_EXTRA_ARGS", '["--scale_number", "4"]')
    det = get_detector("openpose")
    assert isinstance(det, OpenPoseDetector) and det.config.image == "my/openpose:gpu"
    assert det.config.extra_args == ["--scale_number", "4"]


def _fake_docker(tmp_path: Path, run_stderr: str, run_rc: int = 125) -> str:
    """A stand-in ``docker``: ``info`` answers like a running daemon, ``run`` fails as docker does."""
    return str(script(tmp_path / "docker", f"""if [ "$1" = info ]; then echo 28.2.2; exit 0; fi
echo "{run_stderr}" >&2
exit {run_rc}
"""))


@pytest.mark.parametrize("stderr, rc, fix", [
    ('docker: Error response from daemon: could not select device driver "" with capabilities: [[gpu]].', 125,
     "NVIDIA Container Toolkit"),
    ("Unable to find image 'hmmr-openpose:latest' locally\ndocker: Error response from daemon: pull access denied for "
     "hmmr-openpose, repository does not exist or may require 'docker login'.", 125,
     "docker compose --profile gpu build openpose"),
    ("Check failed: cudaSuccess == cudaError (2 vs. 0) out of memory", 1, "exited with status 1"),
], ids=["no-gpu", "no-image", "container-crash"])
def test_container_failures_name_the_fix(samples, tmp_path, stderr, rc, fix):
    det = OpenPoseDetector(OpenPoseConfig(docker=_fake_docker(tmp_path, stderr, rc)))
    with pytest.raises(DetectorError, match="OpenPose container exited with status") as err:
        det.run(samples / "pose2sim_single_cam01.mp4", tmp_path)
    assert fix in str(err.value) and stderr.splitlines()[-1][:40] in str(err.value)


def test_no_docker_and_no_daemon(samples, tmp_path):
    with pytest.raises(DetectorError, match="not found: install Docker"):
        OpenPoseDetector(OpenPoseConfig(docker=str(tmp_path / "no-docker"))).run(samples / "pose2sim_single_cam01.mp4", tmp_path)
    daemonless = script(tmp_path / "docker", "echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                                             "Is the docker daemon running?' >&2\nexit 1\n")
    with pytest.raises(DetectorError, match="daemon is not running: start it"):
        OpenPoseDetector(OpenPoseConfig(docker=str(daemonless))).run(samples / "pose2sim_single_cam01.mp4", tmp_path)


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI on this machine")
def test_real_docker_cli_without_a_daemon(samples, tmp_path):
    """The machine's own docker CLI, whose daemon does not run here (where one does, it must work)."""
    import subprocess

    if subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
        pytest.skip("a Docker daemon runs here")
    with pytest.raises(DetectorError, match="daemon is not running"):
        OpenPoseDetector().run(samples / "pose2sim_single_cam01.mp4", tmp_path)


def test_local_binary_failures(samples, tmp_path):
    video = samples / "pose2sim_single_cam01.mp4"
    with pytest.raises(DetectorError, match="OpenPose binary not found"):
        OpenPoseDetector(OpenPoseConfig(binary=str(tmp_path / "openpose.bin"))).run(video, tmp_path)
    crash = script(tmp_path / "crash.bin", "echo 'Error: Prototxt file not found: models/pose/body_25/pose_deploy.prototxt' >&2\nexit 255\n")
    with pytest.raises(DetectorError, match="openpose.bin exited with status 255.*Prototxt file not found"):
        OpenPoseDetector(OpenPoseConfig(binary=str(crash))).run(video, tmp_path)
    silent = script(tmp_path / "silent.bin", "echo 'OpenPose demo successfully finished.'\nexit 0\n")
    with pytest.raises(DetectorError, match="wrote no JSON"):
        OpenPoseDetector(OpenPoseConfig(binary=str(silent))).run(video, tmp_path / "empty")


def _replaying_binary(tmp_path: Path) -> str:
    """A stand-in ``openpose.bin`` that writes the real OpenPose JSON of pose2sim_single_cam01 into
    its ``--write_json`` folder, under OpenPose's own file names."""
    return str(script(tmp_path / "openpose.bin", f"""while [ $# -gt 0 ]; do
  if [ "$1" = --write_json ]; then out="$2"; fi
  shift
done
i=0
for f in "{FIXTURE}"/cam01.*.json; do
  cp "$f" "$out/cam01_$(printf %012d $i)_keypoints.json"; i=$((i+1))
done
"""))


def test_detector_reads_what_openpose_wrote(samples, tmp_path):
    video = samples / "pose2sim_single_cam01.mp4"
    det = OpenPoseDetector(OpenPoseConfig(binary=_replaying_binary(tmp_path), model_pose="BODY_25B"))
    dets = detect_video(video, probe(video), det, progress=False)
    assert dets.n_frames == 100 and dets.shots == [(0, 100)] and dets.fps == 60.0
    assert sum(len(p) for p in dets.people) == 201
    half = detect_video(video, probe(video), det, fps=30, progress=False)
    assert half.n_frames == 50 and half.fps == 30
    np.testing.assert_array_equal(half.people[10][0].kps, dets.people[20][0].kps)


def test_harvest_records_detector_failures_and_goes_on(samples, tmp_path, monkeypatch, prefect_harness):
    from flows.harvest import harvest

    home = tmp_path / "home"
    home.mkdir()
    sources = home / "sources.txt"
    sources.write_text(f"{samples / 'pose2sim_single_cam01.mp4'}\n{samples / 'pose2sim_multi_cam01.mp4'}\n")
    monkeypatch.setenv("HMMR_OPENPOSE_DOCKER", str(tmp_path / "no-docker"))
    harvest(sources=str(sources), home=str(home), detector="openpose", progress=False)
    rows = q(home, "SELECT status, error, detector FROM videos")
    assert len(rows) == 2 and {r["status"] for r in rows} == {"detector_failed"}
    assert all("install Docker" in r["error"] and r["detector"] == "openpose" for r in rows)

    monkeypatch.setenv("HMMR_OPENPOSE_BINARY", _replaying_binary(tmp_path))
    monkeypatch.setenv("HMMR_OPENPOSE_MODEL_POSE", "BODY_25B")
    sources.write_text(f"{samples / 'pose2sim_single_cam01.mp4'}\n")
    harvest(sources=str(sources), home=str(home), detector="openpose", retry_failed=True, progress=False)
    ok = q(home, "SELECT status, n_detections, n_tracks_kept FROM videos WHERE source LIKE '%single_cam01%'")[0]
    assert ok == {"status": "ok", "n_detections": 201, "n_tracks_kept": 2}
