"""Draw harvested people on video frames: skeletons, boxes and track ids in a stable colour per id."""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

from pose_harvest.keypoints import HMMR25_BONES as BONES


def track_colour(track_id: int | None) -> tuple[int, int, int]:
    """A stable, well-separated RGB colour for a track id (grey when untracked)."""
    if track_id is None or track_id < 0:
        return (160, 160, 160)
    hue = (track_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(255 * r), int(255 * g), int(255 * b)


def draw_people(frame: np.ndarray, kps: np.ndarray, boxes: np.ndarray, track_ids: list[int | None],
                min_conf: float = 0.3) -> np.ndarray:
    """A copy of ``frame`` ``(H, W, 3)`` RGB with each person drawn.

    kps: ``(N, 25, 3)`` HMMR-25 pixels + confidence; boxes: ``(N, 4)`` x0, y0, x1, y1 pixels.
    """
    out = np.ascontiguousarray(frame.copy())
    thick = line_thickness(frame)
    for person, box, tid in zip(kps, boxes, track_ids):
        colour = track_colour(tid)
        for a, b in BONES:
            if person[a, 2] >= min_conf and person[b, 2] >= min_conf:
                cv2.line(out, tuple(int(v) for v in person[a, :2]), tuple(int(v) for v in person[b, :2]), colour, thick, cv2.LINE_AA)
        for x, y, c in person:
            if c >= min_conf:
                cv2.circle(out, (int(x), int(y)), thick + 1, colour, -1, cv2.LINE_AA)
        x0, y0, x1, y1 = (int(v) for v in box)
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, max(1, thick // 2))
        draw_label(out, "untracked" if tid is None else f"track {tid}", x0, y0, colour)
    return out


def line_thickness(frame: np.ndarray) -> int:
    """Line width in pixels that reads well on a frame of this size."""
    return max(2, round(max(frame.shape[:2]) / 400))


def draw_label(out: np.ndarray, label: str, x0: int, y0: int, colour: tuple[int, int, int]) -> None:
    """Write ``label`` in black on a ``colour`` tag whose bottom-left corner is pixel ``(x0, y0)``,
    in place on ``out`` ``(H, W, 3)`` RGB."""
    thick = line_thickness(out)
    scale = thick / 3
    (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    cv2.rectangle(out, (x0, max(0, y0 - th - 8)), (x0 + tw + 8, y0), colour, -1)
    cv2.putText(out, label, (x0 + 4, y0 - 5), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick, cv2.LINE_AA)
