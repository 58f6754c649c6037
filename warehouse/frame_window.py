"""Decode a few consecutive frames of a video with one seeking ffmpeg call.

Frame indices are the harvest's (:class:`pose_harvest.video.FrameStream`): 0-based, in decoding
order at the video's own rate, or at the ``--fps`` the harvest asked for. At the video's own rate,
ffmpeg seeks to half a frame before the frame's own timestamp (read from the packets once per
video) and decodes from the keyframe before it, so a window costs about one GOP, not the video up to
it. At another rate the frames are counted through the same ``fps`` filter from the start.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pose_harvest.video import probe


@dataclass(frozen=True)
class VideoIndex:
    """What seeking needs about one file: decoded size (pixels, after rotation), the native rate
    (frames/s), and ``times`` ``(N,)`` each frame's presentation time, seconds from the first frame."""

    path: Path
    width: int
    height: int
    fps: float
    times: np.ndarray

    @classmethod
    def of(cls, path: str | Path) -> VideoIndex:
        path = Path(path)
        info = probe(path)
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time",
             "-of", "json", str(path)], check=True, capture_output=True, text=True).stdout
        pts = np.sort([float(p["pts_time"]) for p in json.loads(out)["packets"] if "pts_time" in p])
        return cls(path=path, width=info.width, height=info.height, fps=info.fps, times=pts - pts[0])


def read_frames(index: VideoIndex, start: int, count: int, *, fps: float | None = None,
                ffmpeg_cmd: str = "ffmpeg") -> np.ndarray:
    """Frames ``start .. start + count - 1`` as ``(count, H, W, 3)`` uint8 RGB.

    ``fps``: the rate the harvest decoded at (``videos.fps``); ``None`` or the native rate seeks.
    Raises ValueError when the video has fewer frames than asked for.
    """
    resample = fps is not None and abs(fps - index.fps) > 1e-3
    args = [ffmpeg_cmd, "-nostdin", "-hide_banner", "-loglevel", "error"]
    if resample:
        vf = f"fps={fps},select='between(n\\,{start}\\,{start + count - 1})'"
        args += ["-i", str(index.path), "-vf", vf]
    else:
        if not 0 <= start < len(index.times):
            raise ValueError(f"{index.path}: frame {start} is past the last frame {len(index.times) - 1}")
        gap = index.times[start] - index.times[start - 1] if start else 0.0
        if start:
            args += ["-ss", f"{index.times[start] - gap / 2:.6f}"]
        args += ["-i", str(index.path)]
    args += ["-frames:v", str(count), "-vsync", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:"]
    raw = subprocess.run(args, check=True, capture_output=True).stdout
    size = index.width * index.height * 3
    if len(raw) < size * count:
        raise ValueError(f"{index.path}: asked for frames {start}..{start + count - 1}, the video has {len(raw) // size} of them from {start}")
    return np.frombuffer(raw, np.uint8)[: size * count].reshape(count, index.height, index.width, 3)
