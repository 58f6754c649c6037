"""224 x 224 person crops around a track's smoothed box, decoded from the raw video.

The HMMR crop (hmmr-reference.md, the authors' ``process_image``): resize the frame by the track's
``scale`` (150 / person height, so the person is 150 px tall), take the 300 x 300 window centred on
the scaled box centre (the frame's edge pixels repeated where the window leaves the frame), then
resize it to 224 x 224. Here that is one affine warp per frame, from frame pixels straight to crop
pixels, so nothing larger than the crop is ever built.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import ffmpeg
import numpy as np
import pyarrow as pa

from pose_harvest.video import FrameStream, probe

CROP_SIZE = 224  # pixels, the network's input
WINDOW = 300  # pixels of the 150-px-person frame cropped before resizing
FORMATS = ("jpeg", "mp4")
JPEG_QUALITY = 95


def crop_matrix(center_x: float, center_y: float, scale: float, *, size: int = CROP_SIZE, window: int = WINDOW) -> np.ndarray:
    """``(2, 3)`` affine map from frame pixels to crop pixels for a box centre (pixels) and a scale
    (150 / person height): ``crop = (frame * scale - (centre * scale - window / 2)) * size / window``."""
    k = scale * size / window
    return np.array([[k, 0.0, (window / 2 - center_x * scale) * size / window],
                     [0.0, k, (window / 2 - center_y * scale) * size / window]], dtype=np.float64)


def crop(rgb: np.ndarray, center_x: float, center_y: float, scale: float) -> np.ndarray:
    """The ``(224, 224, 3)`` uint8 crop of one ``(H, W, 3)`` frame."""
    return cv2.warpAffine(rgb, crop_matrix(center_x, center_y, scale), (CROP_SIZE, CROP_SIZE),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def video_folder(video_id: str) -> str:
    """A file-system-safe, collision-free folder name for a video id (ids hold ':' and '/')."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", video_id)[:80]
    return f"{safe}-{hashlib.sha1(video_id.encode()).hexdigest()[:8]}"


INDEX_SCHEMA = pa.schema([
    pa.field("video_id", pa.string()),
    pa.field("track_id", pa.int32()),
    pa.field("frame", pa.int32(), metadata={"unit": "frame index"}),
    pa.field("file", pa.string(), metadata={"description": "crop file, relative to the dataset folder"}),
    pa.field("file_frame", pa.int32(), metadata={"description": "frame number inside the file (0 for a JPEG)"}),
])


@dataclass(frozen=True)
class CropResult:
    index: pa.Table  # INDEX_SCHEMA rows, one per cropped frame, sorted by (video_id, track_id, frame)
    skipped: dict[str, str]  # video_id -> why its tracks have no crops


def write_crops(root: Path, videos: pa.Table, track_frames: pa.Table, fmt: str) -> CropResult:
    """Write the crops of every ``track_frames`` row under ``root/crops/``: one JPEG per frame
    (``<video>/<track>/<frame>.jpg``) or one H.264 MP4 per track (``<video>/<track>.mp4``, at the
    video's frame rate). ``videos`` gives each video's ``raw_path`` and decoded ``fps``; a video
    without a readable raw file (imported datasets, deleted files) is skipped and reported."""
    if fmt not in FORMATS:
        raise ValueError(f"crop format {fmt!r}: use one of {FORMATS}")
    rows: dict[str, list] = {f.name: [] for f in INDEX_SCHEMA}
    skipped: dict[str, str] = {}
    frames_by_video: dict[str, list[dict]] = {}
    for r in track_frames.select(["video_id", "track_id", "frame", "center_x", "center_y", "scale"]).to_pylist():
        frames_by_video.setdefault(r["video_id"], []).append(r)
    for video in videos.select(["video_id", "raw_path", "fps"]).to_pylist():
        wanted = frames_by_video.get(video["video_id"])
        if not wanted:
            continue
        raw = Path(video["raw_path"]) if video["raw_path"] else None
        if raw is None or not raw.is_file():
            skipped[video["video_id"]] = "no raw video file" if raw is None else f"raw video file missing: {raw}"
            continue
        for r in _crop_video(root, video["video_id"], raw, video["fps"], wanted, fmt):
            for k, v in r.items():
                rows[k].append(v)
    index = pa.table(rows, schema=INDEX_SCHEMA).sort_by([("video_id", "ascending"), ("track_id", "ascending"), ("frame", "ascending")])
    return CropResult(index=index, skipped=skipped)


def _crop_video(root: Path, video_id: str, raw: Path, fps: float, wanted: list[dict], fmt: str) -> list[dict]:
    info = probe(raw)
    stream = FrameStream(raw, info.width, info.height, fps=None if abs(fps - info.fps) < 1e-6 else fps)
    by_frame: dict[int, list[dict]] = {}
    for r in wanted:
        by_frame.setdefault(r["frame"], []).append(r)
    last = max(by_frame)
    folder = root / "crops" / video_folder(video_id)
    writers: dict[int, object] = {}
    counts: dict[int, int] = {}
    out: list[dict] = []
    try:
        for index, rgb in stream:
            for r in by_frame.get(index, []):
                img = crop(rgb, r["center_x"], r["center_y"], r["scale"])
                tid = r["track_id"]
                if fmt == "jpeg":
                    path = folder / f"{tid:04d}" / f"{index:06d}.jpg"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                    path.write_bytes(buf.tobytes())
                    file_frame = 0
                else:
                    path = folder / f"{tid:04d}.mp4"
                    if tid not in writers:
                        path.parent.mkdir(parents=True, exist_ok=True)
                        writers[tid] = _mp4_writer(path, fps)
                    writers[tid].stdin.write(img.tobytes())
                    file_frame = counts.get(tid, 0)
                    counts[tid] = file_frame + 1
                out.append({"video_id": video_id, "track_id": tid, "frame": index,
                            "file": path.relative_to(root).as_posix(), "file_frame": file_frame})
            if index >= last:
                break
    finally:
        for tid, w in writers.items():
            w.stdin.close()
            if w.wait() != 0:
                raise RuntimeError(f"ffmpeg failed writing the crops of {video_id} track {tid}")
    return out


def _mp4_writer(path: Path, fps: float):
    return (
        ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{CROP_SIZE}x{CROP_SIZE}", framerate=fps)
        .output(str(path), pix_fmt="yuv420p", vcodec="libx264", crf=18, r=fps, **{"fflags": "+bitexact"})
        .overwrite_output()
        .run_async(pipe_stdin=True, quiet=True)
    )
