"""2D pose backends behind one interface (:class:`base.Detector`), chosen by name."""

from __future__ import annotations

import functools

from pose_harvest.detectors.base import Detector, Person

NAMES = ("mediapipe",)


@functools.cache
def get_detector(name: str) -> Detector:
    """The detector called ``name``, created once per process (model files load once)."""
    if name == "mediapipe":
        from pose_harvest.detectors.mediapipe import MediaPipeDetector

        return MediaPipeDetector()
    raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(NAMES)}")


__all__ = ["Detector", "Person", "get_detector", "NAMES"]
