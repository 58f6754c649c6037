"""HMMR track cleaning: from raw tracks to kept/dropped segments with smoothed boxes.

Rules (hmmr-reference.md, from the authors' code):
1. visible keypoint = confidence >= 0.1; the per-frame visible count is median-filtered (k = 5)
   over the track's frames (gaps count as 0 visible);
2. a segment starts at a frame whose filtered count is > 6 and ends before the first frame whose
   filtered count is <= 4 (hysteresis), so one raw track can give several segments;
3. segments of 40 to 500 frames are kept; a longer one is split into consecutive chunks of at most
   500 frames (each chunk >= 40 is kept, a shorter tail is dropped as ``too_short``);
4. face-only segments are dropped: >= 40 % of their frames have no visible keypoint below the
   shoulders;
5. box: centre = middle of the visible keypoints' extent, scale = 150 / person height in pixels
   (so the person is 150 px tall after scaling); gaps are interpolated linearly; centre and scale
   are smoothed with a median filter (k = 11) then a Gaussian (sigma = 3).

Segments are numbered per video in order of (raw track, start frame) from 0; dropped segments are
kept in the output with their ``drop_reason`` so a user can query why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d, median_filter

from pose_harvest.keypoints import HMMR25_BODY_BELOW_SHOULDERS


@dataclass(frozen=True)
class CurationConfig:
    """The paper's defaults. Lengths in frames, heights in pixels."""

    min_conf: float = 0.1
    count_filter: int = 5
    start_above: int = 6
    cut_at_or_below: int = 4
    min_frames: int = 40
    max_frames: int = 500
    face_only_fraction: float = 0.4
    person_height_px: float = 150.0
    median_k: int = 11
    gaussian_sigma: float = 3.0


@dataclass(frozen=True)
class RawTrack:
    """One tracker output: ``frames (N,)`` increasing frame indices, ``kps (N, 25, 3)`` HMMR-25
    keypoints in pixels + confidence, ``shot_id`` of the shot it lies in."""

    raw_track_id: int
    frames: np.ndarray
    kps: np.ndarray
    shot_id: int = 0


@dataclass(frozen=True)
class CuratedTrack:
    """A segment of a raw track, over the consecutive frames ``start_frame..end_frame`` (inclusive).

    center: ``(T, 2)`` smoothed box centre, pixels. scale: ``(T,)`` smoothed 150 / height (1/pixels
    x 150). n_visible: ``(T,)`` raw visible keypoints per frame. interpolated: ``(T,)`` True where the
    track had no detection in that frame.
    """

    track_id: int
    raw_track_id: int
    shot_id: int
    start_frame: int
    end_frame: int
    kept: bool
    drop_reason: str | None
    center: np.ndarray
    scale: np.ndarray
    n_visible: np.ndarray
    interpolated: np.ndarray

    @property
    def n_frames(self) -> int:
        return self.end_frame - self.start_frame + 1


def _segments(filtered: np.ndarray, cfg: CurationConfig) -> list[tuple[int, int]]:
    """``(start, end_exclusive)`` index ranges by the start/cut hysteresis."""
    out, start = [], None
    for i, c in enumerate(filtered):
        if start is None and c > cfg.start_above:
            start = i
        elif start is not None and c <= cfg.cut_at_or_below:
            out.append((start, i))
            start = None
    if start is not None:
        out.append((start, len(filtered)))
    return out


def _interp(x: np.ndarray, have: np.ndarray) -> np.ndarray:
    idx = np.arange(len(x))
    return np.interp(idx, idx[have], x[have])


def _smooth(x: np.ndarray, cfg: CurationConfig) -> np.ndarray:
    return gaussian_filter1d(median_filter(x, size=cfg.median_k, mode="nearest"), cfg.gaussian_sigma, mode="nearest")


def curate_track(raw: RawTrack, first_id: int, cfg: CurationConfig | None = None) -> list[CuratedTrack]:
    """Apply the cleaning rules to one raw track; segment ids start at ``first_id``."""
    cfg = cfg or CurationConfig()
    if len(raw.frames) == 0:
        return []
    f0, f1 = int(raw.frames[0]), int(raw.frames[-1])
    n = f1 - f0 + 1
    kps = np.zeros((n, raw.kps.shape[1], 3), dtype=np.float32)
    kps[raw.frames - f0] = raw.kps
    present = np.zeros(n, dtype=bool)
    present[raw.frames - f0] = True
    vis = kps[..., 2] >= cfg.min_conf
    count = vis.sum(1)
    filtered = median_filter(count, size=cfg.count_filter, mode="nearest")
    body = vis[:, HMMR25_BODY_BELOW_SHOULDERS].any(1)

    pieces: list[tuple[int, int, str | None]] = []
    for a, b in _segments(filtered, cfg):
        for s in range(a, b, cfg.max_frames):
            pieces.append((s, min(s + cfg.max_frames, b), None))
    if not pieces:
        pieces.append((0, n, "few_visible"))

    out = []
    for a, b, reason in pieces:
        seg_vis = vis[a:b]
        has_box = seg_vis.sum(1) >= 2
        if reason is None:
            if b - a < cfg.min_frames:
                reason = "too_short"
            elif (~body[a:b]).mean() >= cfg.face_only_fraction:
                reason = "face_only"
            elif has_box.sum() < 2:
                reason = "few_visible"
        center, scale = _boxes(kps[a:b], seg_vis, has_box, cfg)
        out.append(CuratedTrack(
            track_id=first_id + len(out), raw_track_id=raw.raw_track_id, shot_id=raw.shot_id,
            start_frame=f0 + a, end_frame=f0 + b - 1, kept=reason is None, drop_reason=reason,
            center=center, scale=scale, n_visible=count[a:b].astype(np.int32),
            interpolated=~present[a:b],
        ))
    return out


def _boxes(kps: np.ndarray, vis: np.ndarray, has_box: np.ndarray, cfg: CurationConfig) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed ``(T, 2)`` centres and ``(T,)`` scales; NaN when the segment has no usable frame."""
    t = len(kps)
    if not has_box.any():
        return np.full((t, 2), np.nan, np.float32), np.full(t, np.nan, np.float32)
    x = np.where(vis, kps[..., 0], np.nan)
    y = np.where(vis, kps[..., 1], np.nan)
    with np.errstate(invalid="ignore"):
        x0, x1 = np.nanmin(x[has_box], 1), np.nanmax(x[has_box], 1)
        y0, y1 = np.nanmin(y[has_box], 1), np.nanmax(y[has_box], 1)
    cx, cy = np.zeros(t), np.zeros(t)
    height = np.zeros(t)
    cx[has_box], cy[has_box] = (x0 + x1) / 2, (y0 + y1) / 2
    height[has_box] = np.maximum(y1 - y0, 1.0)
    cx, cy, height = (_interp(v, has_box) for v in (cx, cy, height))
    scale = cfg.person_height_px / height
    center = np.stack([_smooth(cx, cfg), _smooth(cy, cfg)], 1)
    return center.astype(np.float32), _smooth(scale, cfg).astype(np.float32)


def curate(raw_tracks: Sequence[RawTrack], cfg: CurationConfig | None = None) -> list[CuratedTrack]:
    """Curate every raw track of a video, ordered by (raw track id, start frame)."""
    out: list[CuratedTrack] = []
    for raw in sorted(raw_tracks, key=lambda r: r.raw_track_id):
        out.extend(curate_track(raw, len(out), cfg))
    return out
