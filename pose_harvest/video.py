"""Video files: ffprobe validation, and one decoding pass that yields RGB frames and shot cuts.

Frames come from ffmpeg as a raw ``rgb24`` pipe (no image files). The same ffmpeg process runs its
scene-change filter on a small copy of the stream, so shot boundaries cost no second decode.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import ffmpeg
import numpy as np


class InvalidVideo(Exception):
    """The file is not a decodable video (HTML page, text, audio only, truncated, empty ...)."""


@dataclass(frozen=True)
class ProbeResult:
    """What ffprobe says about a file. width/height in pixels (after rotation metadata), fps in
    frames per second, duration in seconds, n_frames counted from the video packets."""

    codec: str
    width: int
    height: int
    fps: float
    n_frames: int
    duration_s: float
    format_name: str


def _rate(text: str | None) -> float:
    try:
        value = float(Fraction(text)) if text else 0.0
    except (ValueError, ZeroDivisionError):
        return 0.0
    return value


def probe(path: str | Path) -> ProbeResult:
    """Validate a video file with ffprobe. Raises :class:`InvalidVideo` with a readable reason."""
    path = Path(path)
    if not path.is_file():
        raise InvalidVideo(f"file not found: {path}")
    if path.stat().st_size == 0:
        raise InvalidVideo("empty file (0 bytes)")
    try:
        info = ffmpeg.probe(str(path), count_packets=None)
    except ffmpeg.Error as exc:
        err = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
        reason = err[-1] if err else "ffprobe failed"
        reason = reason.split(": ", 1)[-1] if str(path) in reason else reason
        raise InvalidVideo(f"not a readable video ({reason})") from exc
    streams = [s for s in info.get("streams", []) if s.get("codec_type") == "video"]
    streams = [s for s in streams if not s.get("disposition", {}).get("attached_pic")]
    if not streams:
        kinds = sorted({s.get("codec_type", "?") for s in info.get("streams", [])}) or ["none"]
        raise InvalidVideo(f"no video stream (streams: {', '.join(kinds)})")
    v = streams[0]
    width, height = int(v.get("width") or 0), int(v.get("height") or 0)
    if _rotation(v) in (90, 270):
        width, height = height, width
    fps = _rate(v.get("avg_frame_rate")) or _rate(v.get("r_frame_rate"))
    n_frames = int(v.get("nb_read_packets") or v.get("nb_frames") or 0)
    declared = int(v.get("nb_frames") or 0)
    if declared and n_frames < 0.9 * declared:
        raise InvalidVideo(f"truncated file: {n_frames} of {declared} frames present")
    duration = float(v.get("duration") or info.get("format", {}).get("duration") or 0.0)
    if width <= 0 or height <= 0 or n_frames <= 0 or fps <= 0:
        raise InvalidVideo(f"video stream has no frames or no size ({width}x{height}, {n_frames} frames, {fps:.2f} fps)")
    return ProbeResult(
        codec=str(v.get("codec_name")),
        width=width,
        height=height,
        fps=fps,
        n_frames=n_frames,
        duration_s=duration or n_frames / fps,
        format_name=str(info.get("format", {}).get("format_name")),
    )


def _rotation(stream: dict) -> int:
    rot = stream.get("tags", {}).get("rotate")
    for side in stream.get("side_data_list", []) or []:
        if "rotation" in side:
            rot = side["rotation"]
    try:
        return int(float(rot or 0)) % 360
    except ValueError:
        return 0


@dataclass
class FrameStream:
    """Decoded frames of one video, plus the shot cuts found while decoding.

    Iterate to get ``(frame_index, rgb)`` with ``rgb`` a ``(H, W, 3)`` uint8 array; ``frame_index``
    counts frames at the output rate (``fps`` if given, else the video's). After the iteration,
    ``cuts`` holds the indices of the first frame of every shot but the first, and ``error`` the
    decoder's complaint if it stopped early (truncated file).
    """

    path: Path
    width: int
    height: int
    fps: float | None = None
    scene_threshold: float = 0.3
    ffmpeg_cmd: str = "ffmpeg"
    cuts: list[int] = field(default_factory=list)
    error: str | None = None
    n_frames: int = 0

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        stream = ffmpeg.input(str(self.path)).video
        if self.fps:
            stream = stream.filter("fps", fps=self.fps)
        split = stream.split()
        frames, scenes = split[0], split[1]
        out_frames = frames.output("pipe:", format="rawvideo", pix_fmt="rgb24", vsync="passthrough")
        out_scenes = (
            scenes.filter("scale", 160, -2)
            .filter("select", f"gt(scene,{self.scene_threshold})")
            .filter("showinfo")
            .output("-", format="null")
        )
        args = ffmpeg.merge_outputs(out_frames, out_scenes).global_args("-nostdin", "-hide_banner", "-loglevel", "info").compile(cmd=self.ffmpeg_cmd)
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        stderr_lines: list[str] = []
        reader = threading.Thread(target=_drain, args=(proc.stderr, stderr_lines), daemon=True)
        reader.start()
        frame_bytes = self.width * self.height * 3
        index = 0
        try:
            while True:
                buf = proc.stdout.read(frame_bytes)
                if len(buf) < frame_bytes:
                    break
                yield index, np.frombuffer(buf, np.uint8).reshape(self.height, self.width, 3)
                index += 1
        finally:
            proc.stdout.close()
            rc = proc.wait()
            reader.join()
        self.n_frames = index
        rate = self.fps or None
        self.cuts = _parse_cuts(stderr_lines, rate, index)
        if rc != 0:
            tail = [ln for ln in stderr_lines if "error" in ln.lower() or "invalid" in ln.lower()]
            self.error = (tail[-1] if tail else (stderr_lines[-1] if stderr_lines else f"ffmpeg exit {rc}")).strip()


def scene_cuts(path: Path, fps: float | None = None, scene_threshold: float = 0.3, ffmpeg_cmd: str = "ffmpeg") -> list[int]:
    """Shot cuts of a video without decoding frames for anyone (for backends that decode the video
    themselves, e.g. OpenPose): the scene filter of :class:`FrameStream` alone, on a 160 px copy.
    Returns the first frame index of every shot but the first, at ``fps`` or the video's rate."""
    stream = ffmpeg.input(str(path)).video
    if fps:
        stream = stream.filter("fps", fps=fps)
    args = (
        stream.filter("scale", 160, -2)
        .filter("select", f"gt(scene,{scene_threshold})")
        .filter("showinfo")
        .output("-", format="null")
        .global_args("-nostdin", "-hide_banner", "-loglevel", "info")
        .compile(cmd=ffmpeg_cmd)
    )
    proc = subprocess.run(args, capture_output=True, text=True, errors="replace")
    if proc.returncode != 0:
        raise InvalidVideo(f"scene detection failed: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}")
    return _parse_cuts(proc.stderr.splitlines(), fps, n_frames=1 << 31)


def _drain(pipe, sink: list[str]) -> None:
    for raw in iter(pipe.readline, b""):
        sink.append(raw.decode(errors="replace"))
    pipe.close()


_SHOWINFO = re.compile(r"Parsed_showinfo.*?\bn:\s*(\d+).*?pts_time:\s*([0-9.]+)")


def _parse_cuts(lines: list[str], fps: float | None, n_frames: int) -> list[int]:
    """Frame indices where a new shot starts, from showinfo lines of the scene filter.

    showinfo's ``n`` counts the *selected* frames, so the frame index comes from ``pts_time``:
    rounded ``pts_time * fps``. Without an fps filter the rate is read from the stream line.
    """
    if fps is None:
        rate = next((float(m.group(1)) for ln in lines if (m := re.search(r"Video:.*?([0-9.]+) fps", ln))), None)
        fps = rate or 30.0
    cuts = set()
    for ln in lines:
        if m := _SHOWINFO.search(ln):
            idx = int(round(float(m.group(2)) * fps))
            if 0 < idx < n_frames:
                cuts.add(idx)
    return sorted(cuts)


def shots_from_cuts(cuts: list[int], n_frames: int) -> list[tuple[int, int]]:
    """``[(start, end_exclusive), ...]`` covering ``range(n_frames)``, split at ``cuts``."""
    bounds = [0, *[c for c in cuts if 0 < c < n_frames], n_frames]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


class VideoWriter:
    """An H.264 MP4 (yuv420p, CRF ``crf``, x264 ``preset``) written from ``(H, W, 3)`` uint8 RGB frames
    through an ffmpeg pipe, at ``fps`` frames per second (kept as the rational ffmpeg would read, e.g.
    30000/1001), one output frame per frame written. A context manager; :meth:`close` raises
    RuntimeError with ffmpeg's complaint when the file could not be written."""

    def __init__(self, path: str | Path, width: int, height: int, fps: float, *, crf: int = 23, preset: str = "veryfast"):
        self.path = Path(path)
        rate = str(Fraction(fps).limit_denominator(1001))
        self._proc = (
            ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", framerate=rate)
            .output(str(self.path), pix_fmt="yuv420p", vcodec="libx264", crf=crf, preset=preset, r=rate)
            .global_args("-nostdin", "-hide_banner", "-loglevel", "error")
            .overwrite_output()
            .run_async(pipe_stdin=True, pipe_stderr=True)
        )
        self._errors: list[str] = []
        self._reader = threading.Thread(target=_drain, args=(self._proc.stderr, self._errors), daemon=True)
        self._reader.start()
        self.n_frames = 0

    def write(self, rgb: np.ndarray) -> None:
        try:
            self._proc.stdin.write(np.ascontiguousarray(rgb, np.uint8).tobytes())
        except BrokenPipeError:  # ffmpeg exited: say why
            self.close()
            raise
        self.n_frames += 1

    def close(self) -> None:
        if self._proc.stdin.closed:
            return
        self._proc.stdin.close()
        rc = self._proc.wait()
        self._reader.join()
        if rc != 0:
            raise RuntimeError(f"ffmpeg could not write {self.path}: {''.join(self._errors).strip() or f'exit {rc}'}")

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        elif not self._proc.stdin.closed:  # already failing: stop ffmpeg without masking the error
            self._proc.stdin.close()
            self._proc.wait()
