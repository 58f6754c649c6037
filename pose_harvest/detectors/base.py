"""The detector interface every 2D pose backend implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


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
