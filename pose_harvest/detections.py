"""Per-frame people of a whole video: run a detector over the decoded frames."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pose_harvest.detectors.base import Detector, Person, VideoDetector
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


def _prefetch(stream: FrameStream, depth: int) -> Iterator[np.ndarray]:
    """Frames of ``stream`` read by a background thread into a queue of ``depth`` frames."""
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    done = object()
    failure: list[BaseException] = []

    def reader() -> None:
        try:
            for _, frame in stream:
                q.put(frame)
        except BaseException as exc:  # re-raised in the consumer
            failure.append(exc)
        finally:
            q.put(done)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    while (item := q.get()) is not done:
        yield item
    thread.join()
    if failure:
        raise failure[0]


class DecodeError(Exception):
    """ffmpeg stopped before the end of the video (truncated or corrupt data)."""


def detect_video(
    path: Path,
    probe: ProbeResult,
    detector: Detector | VideoDetector,
    *,
    fps: float | None = None,
    scene_threshold: float = 0.3,
    progress: bool = True,
    desc: str = "frames",
    prefetch: int = 8,
) -> VideoDetections:
    """Decode ``path`` once (optionally resampled to ``fps``) and run ``detector`` on every frame.

    The detector is reset at the start. Cuts are found by the same ffmpeg process and are known only
    at the end, so they are applied afterwards by tracking (no track crosses a cut); a region of
    interest a detector carries across a cut finds nobody and is dropped by its own checks.
    Up to ``prefetch`` frames are decoded ahead in a thread, so decoding overlaps detection
    (``decode_s`` is then the time spent waiting for frames). Raises :class:`DecodeError` when
    ffmpeg reports an error, so partial results are never stored.
    """
    if isinstance(detector, VideoDetector):  # a backend that reads the file itself (OpenPose)
        return detector.detect_video(path, probe, fps=fps, scene_threshold=scene_threshold, progress=progress, desc=desc)
    stream = FrameStream(path, probe.width, probe.height, fps=fps, scene_threshold=scene_threshold)
    expected = int(round(probe.duration_s * fps)) if fps else probe.n_frames
    people: list[list[Person]] = []
    detector.reset()
    decode_s = detect_s = 0.0
    t0 = time.perf_counter()
    with tqdm(total=expected, desc=desc, unit="frame", disable=not progress, leave=False) as bar:
        for frame in _prefetch(stream, prefetch):
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
