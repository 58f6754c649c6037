"""Per-frame people of a whole video: run a detector over the decoded frames."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from pose_harvest.detectors.base import Detector, Person
from pose_harvest.video import FrameStream, ProbeResult, shots_from_cuts


@dataclass(frozen=True)
class VideoDetections:
    """People found in every decoded frame of one video.

    people[i]: the people of frame ``i`` (frame index at ``fps``; keypoints in pixels of the
    original video). shots: ``[(start, end_exclusive)]`` frame ranges split at scene cuts.
    decode_s / detect_s: wall seconds spent decoding frames and in the detector.
    """

    people: list[list[Person]]
    fps: float
    shots: list[tuple[int, int]]
    decode_s: float
    detect_s: float

    @property
    def n_frames(self) -> int:
        return len(self.people)


class DecodeError(Exception):
    """ffmpeg stopped before the end of the video (truncated or corrupt data)."""


def detect_video(
    path: Path,
    probe: ProbeResult,
    detector: Detector,
    *,
    fps: float | None = None,
    scene_threshold: float = 0.3,
    progress: bool = True,
    desc: str = "frames",
) -> VideoDetections:
    """Decode ``path`` once (optionally resampled to ``fps``) and run ``detector`` on every frame.

    The detector is reset at the start. Cuts are found by the same ffmpeg process and are known only
    at the end, so they are applied afterwards by tracking (no track crosses a cut); a region of
    interest a detector carries across a cut finds nobody and is dropped by its own checks.
    Raises :class:`DecodeError` when ffmpeg reports an error, so partial results are never stored.
    """
    stream = FrameStream(path, probe.width, probe.height, fps=fps, scene_threshold=scene_threshold)
    expected = int(round(probe.duration_s * fps)) if fps else probe.n_frames
    people: list[list[Person]] = []
    detector.reset()
    decode_s = detect_s = 0.0
    t0 = time.perf_counter()
    with tqdm(total=expected, desc=desc, unit="frame", disable=not progress, leave=False) as bar:
        for _, frame in stream:
            t1 = time.perf_counter()
            decode_s += t1 - t0
            people.append(detector.detect(frame))
            t0 = time.perf_counter()
            detect_s += t0 - t1
            bar.update()
    decode_s += time.perf_counter() - t0
    if stream.error:
        raise DecodeError(f"decoding stopped after {len(people)} of ~{expected} frames: {stream.error}")
    return VideoDetections(
        people=people,
        fps=fps or probe.fps,
        shots=shots_from_cuts(stream.cuts, len(people)),
        decode_s=decode_s,
        detect_s=detect_s,
    )
