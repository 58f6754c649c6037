"""2D pose backends behind two interfaces (:mod:`base`): per frame (:class:`Detector`, the
embedded MediaPipe default) or per video file (:class:`VideoDetector`, OpenPose), chosen by name."""

from __future__ import annotations

import functools

from pose_harvest.detectors.base import Detector, DetectorError, Person, VideoDetector

NAMES = ("mediapipe", "openpose")


@functools.cache
def _mediapipe() -> Detector:
    from pose_harvest.detectors.mediapipe import MediaPipeDetector

    return MediaPipeDetector()


def get_detector(name: str) -> Detector | VideoDetector:
    """The detector called ``name``. MediaPipe is created once per process (its model files load
    once); OpenPose reads its settings (``HMMR_OPENPOSE_*``) at each call."""
    if name == "mediapipe":
        return _mediapipe()
    if name == "openpose":
        from pose_harvest.detectors.openpose import OpenPoseDetector

        return OpenPoseDetector()
    raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(NAMES)}")


__all__ = ["Detector", "DetectorError", "NAMES", "Person", "VideoDetector", "get_detector"]
