"""The interfaces 2D pose backends implement: per frame (:class:`Detector`) or per video file
(:class:`VideoDetector`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from pose_harvest.detections import VideoDetections
    from pose_harvest.video import ProbeResult


@dataclass(frozen=True)
class Person:
    """One person found in one frame.

    kps: ``(25, 3)`` float32, HMMR-25 order (:data:`pose_harvest.keypoints.HMMR25`), x/y in pixels
        of the full frame, confidence in [0, 1]; a keypoint the backend cannot give is (0, 0, 0).
    bbox: ``(4,)`` float32 ``x0, y0, x1, y1`` in pixels, the person's box (detector box or keypoint
        extent, backend's choice, documented there).
    score: detection confidence in [0, 1].
    """

    kps: np.ndarray
    bbox: np.ndarray
    score: float


@runtime_checkable
class Detector(Protocol):
    """A 2D pose backend. One instance handles one video at a time (it may carry state between
    consecutive frames, e.g. regions of interest), so call :meth:`reset` before a new video or after
    a shot cut."""

    name: str

    def reset(self) -> None:
        """Forget any state carried between frames (new video or shot cut)."""

    def detect(self, frame: np.ndarray) -> list[Person]:
        """People in one ``(H, W, 3)`` uint8 RGB frame."""


@runtime_checkable
class VideoDetector(Protocol):
    """A 2D pose backend that reads the whole video file itself (an external program such as
    OpenPose) instead of being handed frames one by one."""

    name: str

    def detect_video(self, path: Path, probe: ProbeResult, *, fps: float | None = None,
                     scene_threshold: float = 0.3, progress: bool = True, desc: str = "frames") -> VideoDetections:
        """People in every frame of ``path`` (at ``fps`` or the video's own rate), with its shots."""


class DetectorError(Exception):
    """A pose backend could not run (not installed, no GPU, crashed, wrote nothing). The message
    says what failed and how to fix it; the harvest records it as the video's ``detector_failed``."""
