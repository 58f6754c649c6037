"""2D pose backends behind two interfaces (:mod:`base`): per frame (:class:`Detector`, the
embedded MediaPipe default) or per video file (:class:`VideoDetector`, OpenPose), chosen by name."""

from __future__ import annotations

import threading

from pose_harvest.detectors.base import Detector, DetectorError, Person, VideoDetector

NAMES = ("mediapipe", "openpose")
_per_thread = threading.local()


def _mediapipe() -> Detector:
    """This thread's MediaPipe detector: a detector follows one video stream at a time, and videos
    harvested at once run in threads of one process (``flows.runners``)."""
    if (det := getattr(_per_thread, "mediapipe", None)) is None:
        from pose_harvest.detectors.mediapipe import MediaPipeDetector

        det = _per_thread.mediapipe = MediaPipeDetector()
    return det


def get_detector(name: str) -> Detector | VideoDetector:
    """The detector called ``name``. MediaPipe is created once per thread (its model files load
    once); OpenPose reads its settings (``HMMR_OPENPOSE_*``) at each call."""
    if name == "mediapipe":
        return _mediapipe()
    if name == "openpose":
        from pose_harvest.detectors.openpose import OpenPoseDetector

        return OpenPoseDetector()
    raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(NAMES)}")


__all__ = ["Detector", "DetectorError", "NAMES", "Person", "VideoDetector", "get_detector"]
