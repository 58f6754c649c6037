"""How a 2D pose detector errs, measured on real harvested tracks, and the same errors put on clean keypoints.

:class:`DetectorNoise` holds per-keypoint statistics of a detector's output on kept tracks:

* ``jitter`` ``(25,)``: robust standard deviation (1.4826 x MAD) of a keypoint's frame-to-frame
  wobble, per image axis, as a fraction of the person's height. The wobble is the residual of the
  keypoint's track against a local cubic fit (Savitzky-Golay over ``SMOOTH_S`` seconds, refitted
  without the outliers below so a spike does not leak into its neighbours), over runs of
  consecutive frames where it is visible, divided by the residual's factor for white noise
  (``sqrt(1 - 2 h_0 + sum h_k^2)`` of that filter). Motion that a cubic over ``SMOOTH_S`` does not
  follow (a jump's take-off) also lands in the residual, so this is an upper bound on the detector's
  own jitter.
* ``correlation_s``: the residual's correlation time (lag-1 autocorrelation ``rho`` at frame rate f
  gives ``-1 / (f ln rho)`` seconds), so noise at another frame rate keeps its time scale.
* ``outlier_rate`` / ``outlier_scale``: residuals beyond ``OUTLIER_SIGMAS`` robust deviations (gross
  errors: a limb snapped to the wrong place), their share of visible keypoints and their RMS size as
  a fraction of the person's height.
* ``missing`` ``(25,)``: share of detected frames where the keypoint is not visible (confidence
  below 0.1); ``conf_mean`` / ``conf_std`` ``(25,)``: confidence of visible keypoints.
* ``frame_dropout``: share of a kept track's frames with no detection at all (the track interpolated).
* ``edge_fraction``: share of detected frames whose visible keypoints touch the image border (within
  ``EDGE_PX``): how often people are cut off. It is not drawn by :func:`apply_noise` (truncation comes
  from where the camera puts the person); it is measured on synthetic views alike, to compare.

:func:`measure_noise` computes them from tracks; :func:`apply_noise` draws them onto clean
keypoints (and drops keypoints outside the image: truncation). :data:`MEDIAPIPE_NOISE` are the
numbers measured on the bundled sample videos (see its comment); ``hmmr mocap noise`` measures them
again on any harvest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.signal import savgol_coeffs, savgol_filter

from pose_harvest.curate import CurationConfig
from pose_harvest.keypoints import bbox_from_keypoints

SMOOTH_S = 0.25  #: seconds: window of the local cubic a keypoint track is compared with
POLYORDER = 3
MIN_RUN_S = 0.5  #: seconds: shortest run of visible frames measured
OUTLIER_SIGMAS = 5.0
EDGE_PX = 3.0
VISIBLE = CurationConfig().min_conf  # 0.1


@dataclass(frozen=True)
class TrackSample:
    """One real track: ``kps (N, 25, 3)`` pixels + confidence over consecutive frames (zeros where
    there was no detection), ``has_detection (N,)``, ``height_px (N,)`` the person's height in pixels
    per frame (e.g. the box height), ``fps``, ``image_size`` (width, height) pixels."""

    kps: np.ndarray
    has_detection: np.ndarray
    height_px: np.ndarray
    fps: float
    image_size: tuple[int, int]


@dataclass(frozen=True)
class DetectorNoise:
    """Measured error statistics of one detector (see the module docstring for each field)."""

    detector: str
    jitter: tuple[float, ...]
    correlation_s: float
    outlier_rate: float
    outlier_scale: float
    missing: tuple[float, ...]
    conf_mean: tuple[float, ...]
    conf_std: tuple[float, ...]
    frame_dropout: float
    edge_fraction: float
    n_tracks: int
    n_frames: int

    def as_dict(self) -> dict:
        return asdict(self)

    def literal(self, name: str) -> str:
        """Python source assigning these numbers (rounded to 4 decimals) to ``name``, for pasting into this module."""
        r = lambda v: tuple(round(float(x), 4) for x in v)  # noqa: E731
        return (f"{name} = DetectorNoise(\n    detector={self.detector!r},\n    jitter={r(self.jitter)},\n"
                f"    correlation_s={self.correlation_s:.4f}, outlier_rate={self.outlier_rate:.4f}, outlier_scale={self.outlier_scale:.4f},\n"
                f"    missing={r(self.missing)},\n    conf_mean={r(self.conf_mean)},\n    conf_std={r(self.conf_std)},\n"
                f"    frame_dropout={self.frame_dropout:.4f}, edge_fraction={self.edge_fraction:.4f}, n_tracks={self.n_tracks}, "
                f"n_frames={self.n_frames},\n)")


def _window(fps: float) -> int:
    """Odd number of frames of the Savitzky-Golay window at ``fps`` (at least ``POLYORDER + 2``)."""
    n = max(int(round(SMOOTH_S * fps)), POLYORDER + 2)
    return n + 1 - n % 2


def _white_noise_factor(window: int) -> float:
    """Standard deviation of ``e - H e`` for unit white noise ``e`` and the Savitzky-Golay filter ``H``."""
    h = savgol_coeffs(window, POLYORDER)
    return float(np.sqrt(1 - 2 * h[window // 2] + (h ** 2).sum()))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(start, end_exclusive)`` of the runs of True in ``mask``."""
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(np.int8), 0]))
    return list(zip(edges[::2], edges[1::2]))


def _robust_std(r: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(r - np.median(r)))) if r.size else 0.0


def _residual(xy: np.ndarray, window: int, passes: int = 5) -> np.ndarray:
    """``xy (N, 2)`` minus its local cubic fit, the fit made robust to spikes: a spike would pull the
    fit and leak into its neighbours' residuals, so points beyond ``OUTLIER_SIGMAS`` robust deviations
    are replaced by the fit and the fit is made again (up to ``passes`` times)."""
    fit = savgol_filter(xy, window, POLYORDER, axis=0)
    for _ in range(passes):
        r = xy - fit
        bad = (np.abs(r) > OUTLIER_SIGMAS * max(_robust_std(r), 1e-9)).any(1)
        if not bad.any():
            break
        fit = savgol_filter(np.where(bad[:, None], fit, xy), window, POLYORDER, axis=0)
    return xy - fit


def measure_noise(tracks: list[TrackSample], detector: str) -> DetectorNoise:
    """The statistics of :class:`DetectorNoise` over ``tracks`` (real kept tracks of one detector)."""
    if not tracks:
        raise ValueError("no tracks to measure detector noise on")
    k = tracks[0].kps.shape[1]
    residuals: list[list[np.ndarray]] = [[] for _ in range(k)]
    lag_pairs: list[tuple[np.ndarray, np.ndarray, float]] = []
    detected = missing = np.zeros(k)
    confs: list[list[np.ndarray]] = [[] for _ in range(k)]
    frames = dropped = at_edge = 0
    for t in tracks:
        window = _window(t.fps)
        factor = _white_noise_factor(window)
        det = t.has_detection.astype(bool)
        frames += len(det)
        dropped += int((~det).sum())
        vis = (t.kps[..., 2] >= VISIBLE) & det[:, None]
        at_edge += int(touches_edge(t.kps, t.image_size)[det].sum())
        detected = detected + det.sum()
        missing = missing + (det[:, None] & ~vis).sum(0)
        for j in range(k):
            confs[j].append(t.kps[vis[:, j], j, 2])
            for a, b in _runs(vis[:, j]):
                if b - a < max(MIN_RUN_S * t.fps, window):
                    continue
                r = _residual(t.kps[a:b, j, :2].astype(np.float64), window) / (t.height_px[a:b, None] * factor)
                residuals[j].append(r.reshape(-1))
                lag_pairs.append((r[:-1].reshape(-1), r[1:].reshape(-1), t.fps))
    jitter, outliers, outlier_sq, n_res = [], 0, [], 0
    for j in range(k):
        r = np.concatenate(residuals[j]) if residuals[j] else np.zeros(0)
        s = _robust_std(r)
        jitter.append(s)
        if len(r) and s > 0:
            far = np.abs(r) > OUTLIER_SIGMAS * s
            outliers += int(far.sum())
            outlier_sq.append(r[far] ** 2)
            n_res += len(r)
    rho_time = []
    for x, y, fps in lag_pairs:
        if len(x) > 2 and x.std() > 0 and y.std() > 0:
            rho = float(np.corrcoef(x, y)[0, 1])
            if 0 < rho < 1:
                rho_time.append(-1.0 / (fps * np.log(rho)))
    sq = np.concatenate(outlier_sq) if outlier_sq else np.zeros(0)
    conf = [np.concatenate(c) if c else np.zeros(0) for c in confs]
    return DetectorNoise(
        detector=detector, jitter=tuple(jitter),
        correlation_s=float(np.median(rho_time)) if rho_time else 0.0,
        outlier_rate=outliers / max(n_res, 1), outlier_scale=float(np.sqrt(sq.mean())) if len(sq) else 0.0,
        missing=tuple(float(m) for m in missing / np.maximum(detected, 1)),
        conf_mean=tuple(float(c.mean()) if len(c) else 0.0 for c in conf),
        conf_std=tuple(float(c.std()) if len(c) else 0.0 for c in conf),
        frame_dropout=dropped / max(frames, 1), edge_fraction=at_edge / max(frames - dropped, 1),
        n_tracks=len(tracks), n_frames=frames,
    )


def touches_edge(kps: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """``(N,)``: the visible keypoints of each frame of ``kps (N, K, 3)`` come within :data:`EDGE_PX` of
    the border of an image of ``image_size`` (width, height)."""
    box = bbox_from_keypoints(kps, VISIBLE)
    w, h = image_size
    with np.errstate(invalid="ignore"):
        return (box[:, 0] <= EDGE_PX) | (box[:, 1] <= EDGE_PX) | (box[:, 2] >= w - 1 - EDGE_PX) | (box[:, 3] >= h - 1 - EDGE_PX)


def apply_noise(kps: np.ndarray, height_px: np.ndarray, fps: float, noise: DetectorNoise, rng: np.random.Generator,
                image_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Detector-like keypoints from clean projections.

    ``kps (N, 25, 2)`` pixels over N consecutive frames, ``height_px (N,)`` the person's height in
    pixels, ``image_size`` (width, height). Adds AR(1) jitter with the measured per-keypoint deviation
    and correlation time, gross outliers, drops keypoints (the measured missing rate, and every point
    outside the image or behind the camera, marked by NaN), draws confidences, and drops whole frames
    (the measured dropout rate; also a frame with fewer than 2 visible keypoints). Returns ``(N, 25, 3)``
    pixels + confidence ((0, 0, 0) when missing) and ``has_detection (N,)``.
    """
    n, k = kps.shape[:2]
    sigma = np.asarray(noise.jitter)[None, :, None] * height_px[:, None, None]  # (N, K, 1) pixels
    rho = float(np.exp(-1.0 / (fps * noise.correlation_s))) if noise.correlation_s > 0 else 0.0
    white = rng.standard_normal((n, k, 2))
    ar = np.empty_like(white)
    ar[0] = white[0]
    for t in range(1, n):  # unit-variance AR(1): x_t = rho x_{t-1} + sqrt(1 - rho^2) e_t
        ar[t] = rho * ar[t - 1] + np.sqrt(1 - rho ** 2) * white[t]
    xy = kps + sigma * ar
    # gross errors: a normal displacement of the measured RMS, but at least OUTLIER_SIGMAS deviations
    # (what the measurement counted as one) on each axis
    far = rng.random((n, k)) < noise.outlier_rate
    jump = rng.standard_normal((n, k, 2)) * noise.outlier_scale
    floor = OUTLIER_SIGMAS * np.asarray(noise.jitter)[None, :, None]
    jump = np.sign(jump) * np.maximum(np.abs(jump), floor) * height_px[:, None, None]
    xy[far] += jump[far]
    w, h = image_size
    inside = np.isfinite(xy).all(-1) & (xy[..., 0] >= 0) & (xy[..., 0] <= w - 1) & (xy[..., 1] >= 0) & (xy[..., 1] <= h - 1)
    visible = inside & (rng.random((n, k)) >= np.asarray(noise.missing)[None])
    conf = np.clip(np.asarray(noise.conf_mean) + np.asarray(noise.conf_std) * rng.standard_normal((n, k)), VISIBLE, 1.0)
    has = (rng.random(n) >= noise.frame_dropout) & (visible.sum(1) >= 2)
    visible &= has[:, None]
    out = np.zeros((n, k, 3), np.float32)
    out[visible, :2] = xy[visible]
    out[visible, 2] = conf[visible]
    return out, has


# Measured with measure_noise on the 4 sample videos of samples/ (sports2d_demo at 30 fps, the three
# pose2sim clips at 60 fps), harvested once by ``hmmr harvest`` with the default MediaPipe backend into
# an empty HMMR_HOME: 10 kept tracks, 1,079 frames. Re-measure with ``hmmr mocap noise --home H`` (it
# prints this literal). MediaPipe has no head top and no small toes: their missing rate is 1. The
# heavy tail (5.2 % of visible keypoints beyond 5 robust deviations) includes the jumper's flip and
# jumping jacks, real motion a 0.25 s cubic does not follow.
MEDIAPIPE_NOISE = DetectorNoise(
    detector='mediapipe',
    jitter=(0.0069, 0.0051, 0.0036, 0.0033, 0.0051, 0.0075, 0.0054, 0.0052, 0.0034, 0.0034, 0.0049, 0.005, 0.0024, 0.0, 0.0042, 0.0037, 0.0039, 0.003, 0.0033, 0.0078, 0.0073, 0.0, 0.0, 0.0063, 0.006),
    correlation_s=0.0135, outlier_rate=0.0515, outlier_scale=0.1111,
    missing=(0.0, 0.0, 0.0, 0.0, 0.0028, 0.0, 0.0649, 0.0621, 0.0, 0.0, 0.0667, 0.051, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0009, 0.0),
    conf_mean=(0.8447, 0.885, 0.9992, 0.9993, 0.8917, 0.8519, 0.8325, 0.8337, 0.9995, 0.9992, 0.8822, 0.8688, 0.999, 0.0, 0.9978, 0.9976, 0.9978, 0.997, 0.9976, 0.9146, 0.899, 0.0, 0.0, 0.9068, 0.9136),
    conf_std=(0.1282, 0.1799, 0.0012, 0.0013, 0.1943, 0.1421, 0.242, 0.243, 0.0024, 0.0039, 0.2157, 0.2131, 0.0043, 0.0, 0.0228, 0.0227, 0.0215, 0.0233, 0.0214, 0.1233, 0.1323, 0.0, 0.0, 0.1643, 0.1212),
    frame_dropout=0.0000, edge_fraction=0.0056, n_tracks=10, n_frames=1079,
)
