"""OpenPose (BODY_25, the paper's pseudo-ground-truth detector), run as an external program.

Two ways to run it, both ending in the same JSON folder that :mod:`pose_harvest.openpose_json` reads:

* in its container (default): ``docker run --rm --gpus all -v VIDEO_DIR:/input:ro -v OUT:/output
  IMAGE openpose.bin --video /input/NAME --write_json /output --display 0 --render_pose 0 ...``;
  the image is ``docker/openpose/Dockerfile`` (``docker compose --profile gpu build openpose``);
* a local build: ``HMMR_OPENPOSE_BINARY=/path/to/openpose.bin`` (plus ``HMMR_OPENPOSE_MODEL_FOLDER``).

Every way it can fail (no Docker, no daemon, no GPU, no image, a crash, no JSON) raises
:class:`DetectorError` with the fix in the message; the harvest stores it as the video's status.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from tqdm import tqdm

from pose_harvest import openpose_json
from pose_harvest.detections import VideoDetections
from pose_harvest.detectors.base import DetectorError
from pose_harvest.keypoints import BODY25, BODY25B, COCO18, Layout
from pose_harvest.video import ProbeResult, scene_cuts, shots_from_cuts

MODEL_LAYOUTS: dict[str, Layout] = {"BODY_25": BODY25, "BODY_25B": BODY25B, "COCO": COCO18}


class OpenPoseConfig(BaseSettings):
    """How OpenPose is run (environment variables ``HMMR_OPENPOSE_*``)."""

    model_config = SettingsConfigDict(env_prefix="HMMR_OPENPOSE_", extra="forbid")

    image: str = Field("hmmr-openpose:latest", description="container image with openpose.bin (docker/openpose/Dockerfile)")
    docker: str = Field("docker", description="the docker command")
    gpus: str | None = Field("all", description="value of docker run --gpus (None: run on the CPU build of an image)")
    binary_in_image: str = Field("/openpose/build/examples/openpose/openpose.bin", description="openpose.bin inside the image")
    binary: str | None = Field(None, description="a local openpose.bin: run it directly instead of a container")
    model_folder: str | None = Field(None, description="--model_folder for a local binary (OpenPose's models/ folder)")
    model_pose: str = Field("BODY_25", description="--model_pose: BODY_25 (the paper's), BODY_25B or COCO")
    net_resolution: str = Field("-1x368", description="--net_resolution (OpenPose's default)")
    number_people_max: int = Field(-1, description="--number_people_max (-1: no limit)")
    extra_args: list[str] = Field(default_factory=list, description="more openpose.bin flags, as a list")
    timeout_s: float = Field(3600.0, description="give up on one video after this many seconds")


def openpose_args(video: str, json_dir: str, cfg: OpenPoseConfig) -> list[str]:
    """The ``openpose.bin`` flags for one video (paths as the program sees them)."""
    if cfg.model_pose not in MODEL_LAYOUTS:
        raise DetectorError(f"unsupported OpenPose model {cfg.model_pose!r}: choose one of {', '.join(MODEL_LAYOUTS)}")
    args = ["--video", video, "--write_json", json_dir, "--display", "0", "--render_pose", "0",
            "--model_pose", cfg.model_pose, "--net_resolution", cfg.net_resolution,
            "--number_people_max", str(cfg.number_people_max)]
    return args + list(cfg.extra_args)


def command(video: Path, json_dir: Path, cfg: OpenPoseConfig) -> list[str]:
    """The exact command line that runs OpenPose on ``video``, writing JSON into ``json_dir``."""
    video, json_dir = Path(video).resolve(), Path(json_dir).resolve()
    if cfg.binary:
        cmd = [cfg.binary, *openpose_args(str(video), str(json_dir), cfg)]
        return cmd + (["--model_folder", cfg.model_folder] if cfg.model_folder else [])
    docker = [cfg.docker, "run", "--rm"]
    if cfg.gpus:
        docker += ["--gpus", cfg.gpus]
    docker += ["-v", f"{video.parent}:/input:ro", "-v", f"{json_dir}:/output", cfg.image, cfg.binary_in_image]
    return docker + openpose_args(f"/input/{video.name}", "/output", cfg)


_DOCKER_HINTS = (  # (text in docker's stderr, what to do)
    ("cannot connect to the docker daemon", "the Docker daemon is not running: start it (sudo systemctl start docker) or use a local build (HMMR_OPENPOSE_BINARY)"),
    ("permission denied while trying to connect", "this user may not use Docker: add it to the docker group, or use a local build (HMMR_OPENPOSE_BINARY)"),
    ("could not select device driver", "Docker sees no GPU: install the NVIDIA Container Toolkit (nvidia-ctk), or set HMMR_OPENPOSE_GPUS= for a CPU image"),
    ("unable to find image", "the OpenPose image is missing: build it with `docker compose --profile gpu build openpose` or set HMMR_OPENPOSE_IMAGE"),
    ("pull access denied", "the OpenPose image is missing: build it with `docker compose --profile gpu build openpose` or set HMMR_OPENPOSE_IMAGE"),
)


def _check_runnable(cfg: OpenPoseConfig) -> None:
    """Fail early, with the fix, when the program or the Docker daemon is not there."""
    if cfg.binary:
        if not Path(cfg.binary).is_file():
            raise DetectorError(f"OpenPose binary not found: {cfg.binary} (HMMR_OPENPOSE_BINARY); build OpenPose or unset it to use the container")
        return
    if shutil.which(cfg.docker) is None:
        raise DetectorError(f"`{cfg.docker}` not found: install Docker (with the NVIDIA Container Toolkit for GPUs) "
                            "or point HMMR_OPENPOSE_BINARY at a local openpose.bin")
    info = subprocess.run([cfg.docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if info.returncode != 0:
        raise DetectorError(_explain(info.stderr, f"`{cfg.docker} info` failed"))


def _explain(stderr: str, what: str) -> str:
    text = stderr.strip()
    low = text.lower()
    hint = next((fix for needle, fix in _DOCKER_HINTS if needle in low), None)
    tail = " | ".join(text.splitlines()[-3:]) or "no output"
    return f"{what}: {hint}. ({tail})" if hint else f"{what}: {tail}"


class OpenPoseDetector:
    """OpenPose over a whole video file (a :class:`~pose_harvest.detectors.base.VideoDetector`)."""

    name = "openpose"

    def __init__(self, config: OpenPoseConfig | None = None):
        self.config = config or OpenPoseConfig()

    def run(self, video: Path, json_dir: Path) -> None:
        """Run OpenPose on ``video`` into ``json_dir``; raises :class:`DetectorError`."""
        cfg = self.config
        _check_runnable(cfg)
        cmd = command(video, json_dir, cfg)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=cfg.timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise DetectorError(f"OpenPose ran longer than {cfg.timeout_s:g} s on {video.name} (HMMR_OPENPOSE_TIMEOUT_S)") from exc
        except OSError as exc:
            raise DetectorError(f"cannot start {cmd[0]}: {exc}") from exc
        if proc.returncode != 0:
            where = "the OpenPose container" if not cfg.binary else "openpose.bin"
            raise DetectorError(_explain(proc.stderr or proc.stdout, f"{where} exited with status {proc.returncode}"))
        if not any(json_dir.glob("*.json")):
            raise DetectorError(f"OpenPose finished but wrote no JSON into {json_dir} (check --write_json, the video codec, "
                                f"and its output: {' | '.join((proc.stderr or proc.stdout).strip().splitlines()[-3:]) or 'none'})")

    def detect_video(self, path: Path, probe: ProbeResult, *, fps: float | None = None, scene_threshold: float = 0.3,
                     progress: bool = True, desc: str = "frames") -> VideoDetections:
        """People in every frame (OpenPose processes every frame; with ``fps`` the results are
        subsampled to that rate), shots from ffmpeg's scene filter."""
        layout = MODEL_LAYOUTS.get(self.config.model_pose)
        with tempfile.TemporaryDirectory(prefix="hmmr-openpose-") as tmp, \
                tqdm(total=1, desc=f"{desc} (openpose)", unit="video", disable=not progress, leave=False) as bar:
            t = time.perf_counter()
            self.run(Path(path), Path(tmp))
            detect_s = time.perf_counter() - t
            folder = openpose_json.read_folder(tmp, layout=layout, n_frames=probe.n_frames)
            bar.update()
        if fps:
            n = int(folder.n_frames * fps / probe.fps)
            keep = [min(round(i * probe.fps / fps), folder.n_frames - 1) for i in range(n)]
            folder = openpose_json.OpenPoseFolder([folder.people[i] for i in keep], folder.layout, [], 0)
        shots = shots_from_cuts(scene_cuts(path, fps, scene_threshold), folder.n_frames)
        return openpose_json.to_video_detections(folder, fps or probe.fps, shots, detect_s=detect_s)
