"""Pictures of predictions: body meshes over the video (one colour and label per track), and the past /
present / future panels of single images. Meshes are drawn by :class:`model.mesh_render.MeshRenderer`."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from model.mesh_render import MeshRenderer
from model.predict import Hallucinated, TrackMotion
from pose_harvest.render import draw_label, track_colour
from pose_harvest.video import FrameStream, VideoWriter
from warehouse.crops import crop_images

PANEL_PX = 320  # side of one single-image panel, pixels


def _people_at(tracks: dict[int, TrackMotion]) -> dict[int, list[tuple[int, int]]]:
    """frame -> [(track_id, row of that frame in the track)]"""
    at: dict[int, list[tuple[int, int]]] = {}
    for tid, motion in tracks.items():
        for row, frame in enumerate(motion.frames.tolist()):
            at.setdefault(frame, []).append((tid, row))
    return at


def draw_tracks(renderer: MeshRenderer, rgb: np.ndarray, people: list[tuple[int, np.ndarray]]) -> np.ndarray:
    """``rgb`` with the meshes ``people`` ``[(track_id, (V, 3) image pixels + depth)]`` drawn, the
    person nearest the camera (biggest) in front, each labelled with its track id above its mesh."""
    if not people:
        return rgb
    size = [np.ptp(v[:, 1]) for _, v in people]
    order = np.argsort(size)[::-1]  # weak perspective: the taller on screen, the nearer
    meshes = [people[i][1] for i in order]
    colours = [track_colour(people[i][0]) for i in order]
    out = renderer.overlay(rgb, meshes, colours)
    h, w = out.shape[:2]
    for tid, verts in people:
        x0, y0 = verts[:, 0].min(), verts[:, 1].min()
        draw_label(out, f"track {tid}", int(np.clip(x0, 0, w - 1)), int(np.clip(y0, 30, h - 1)), track_colour(tid))
    return out


def render_overlay(video: Path, out: Path, tracks: dict[int, TrackMotion], faces: np.ndarray, *, width: int,
                   height: int, fps: float, resample: bool, progress: bool = True,
                   timings: dict[str, float] | None = None) -> int:
    """Write ``out`` (MP4): every decoded frame of ``video`` with the tracks' meshes. ``fps`` is the
    harvest's decoding rate (``videos.fps``) and ``resample`` whether it differs from the file's own.
    Returns the frames written (the video's, one for one). ``timings``, when given, receives the
    seconds spent waiting for decoded frames (``decode``), drawing (``render``) and handing frames to
    the encoder (``encode``)."""
    at = _people_at(tracks)
    spent = timings if timings is not None else {}
    for key in ("decode", "render", "encode"):
        spent.setdefault(key, 0.0)
    stream = FrameStream(video, width, height, fps=fps if resample else None)
    with MeshRenderer(faces, width, height) as renderer, VideoWriter(out, width, height, fps) as writer:
        t0 = time.perf_counter()
        for index, rgb in tqdm(stream, desc="overlay", unit="frame", disable=not progress, leave=False):
            t1 = time.perf_counter()
            people = [(tid, tracks[tid].vertices_image(row)) for tid, row in at.get(index, [])]
            drawn = draw_tracks(renderer, rgb, people)
            t2 = time.perf_counter()
            writer.write(drawn)
            t3 = time.perf_counter()
            spent["decode"] += t1 - t0
            spent["render"] += t2 - t1
            spent["encode"] += t3 - t2
            t0 = t3
        writer.close()  # the encoder's last frames
        spent["encode"] += time.perf_counter() - t0
    if stream.error:
        raise RuntimeError(f"decoding {video} stopped after {stream.n_frames} frames: {stream.error}")
    return writer.n_frames


def crop_vertices(vertices: np.ndarray, cam_crop: np.ndarray, side: int) -> np.ndarray:
    """``(V, 3)`` metres -> pixels of the crop shown ``side`` x ``side`` (x, y) and depth, through the
    crop camera ``(s, tx, ty)``."""
    s, tx, ty = cam_crop
    half = side / 2  # normalised x_n in [-1, 1] is pixel (x_n + 1) side / 2 - 0.5
    x = (s * (vertices[:, 0] + tx) + 1) * half - 0.5
    y = (s * (vertices[:, 1] + ty) + 1) * half - 0.5
    return np.stack([x, y, vertices[:, 2] * s * half], 1).astype(np.float32)


def time_label(dt: int) -> str:
    return "t (present)" if dt == 0 else f"t{dt:+d} ({'future' if dt > 0 else 'past'})"


def render_panels(image: np.ndarray, people: Hallucinated, affine: np.ndarray, faces: np.ndarray,
                  side: int = PANEL_PX) -> np.ndarray:
    """One row per person of ``len(people.times)`` panels ``side`` x ``side``: the person's HMMR crop
    (cut by ``affine`` ``(P, 2, 3)``) with the mesh at each time (past and future dimmed behind), in
    the person's colour; ``(P * side, K * side, 3)`` uint8 RGB."""
    crops = crop_images(np.repeat(image[None], len(affine), 0), affine)
    n_people, n_times = len(affine), len(people.times)
    sheet = np.zeros((n_people * side, n_times * side, 3), np.uint8)
    with MeshRenderer(faces, side, side) as renderer:
        for p in range(n_people):
            background = cv2.resize(crops[p], (side, side), interpolation=cv2.INTER_LINEAR)
            colour = track_colour(p)
            for k, dt in enumerate(people.times):
                base = background if dt == 0 else (background * 0.55 + 60).astype(np.uint8)
                panel = renderer.overlay(base, [crop_vertices(people.vertices[k, p], people.cam_crop[p], side)], [colour])
                draw_label(panel, f"person {p}: {time_label(dt)}", 2, 28, colour)
                sheet[p * side:(p + 1) * side, k * side:(k + 1) * side] = panel
    return sheet
