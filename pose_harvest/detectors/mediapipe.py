"""Multi-person BlazePose from the two model files inside the mediapipe wheel (offline, CPU).

MediaPipe's own pose solution follows one person. This backend runs its two networks directly
(``ai_edge_litert``) the way its graph does, for several people at once:

1. person detector (``pose_detection.tflite``, SSD, 224x224 letterboxed) on the whole frame and on
   overlapping tiles (small and truncated people are found in tiles), merged by weighted NMS; it
   runs every ``detect_every`` frames;
2. a rotated square region of interest per person from the detector's alignment points (hip centre
   and full-body point), scaled by 1.25 (MediaPipe's values);
3. landmark model (``pose_landmark_full.tflite``, 256x256 crop) on every region every frame; its
   alignment landmarks 33/34 give the region for the next frame, so people are followed between
   detector runs; a region whose pose-presence score falls below ``min_presence`` is dropped;
4. duplicates (two regions converging on one person) are suppressed, and people that are too small
   or show too few confident landmarks are filtered out (objects rarely pass both);
5. where people overlap, a region whose fit landed on someone already found is fitted again with
   that someone painted out, so the person in front of (or behind) another is not lost.

Keypoints are returned in HMMR-25 order, in pixels of the original frame, confidence = landmark
visibility (sigmoid). ``Person.bbox`` is the extent of the landmarks with visibility >= 0.3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pose_harvest.detectors.base import Person
from pose_harvest.keypoints import BLAZEPOSE33, HMMR25, HMMR25_BONES, convert

DETECTOR_SIZE = 224
LANDMARK_SIZE = 256


@dataclass(frozen=True)
class MediaPipeConfig:
    """Settings of the multi-person BlazePose backend.

    max_side: frames are downscaled (INTER_LINEAR) so the long side is at most this, in pixels.
    detect_every: run the person detector every N frames (landmarks run every frame).
    tile_frac / tile_overlap: square tiles of ``tile_frac`` x the short side, overlapping by this
        fraction, are searched besides the whole frame (0 disables tiles).
    tile_margin: a tile keeps a person only if the body circle, scaled by this, stays inside its
        inner edges (see ``_inside_tile``).
    min_detection_score: detector score threshold (sigmoid).
    nms_iou: IoU above which detections are merged (weighted NMS).
    min_presence: landmark model's pose-presence threshold for a newly detected person.
    keep_presence: lower threshold for a person followed from the previous frame (hysteresis:
        the presence score dips in unusual poses, e.g. a flip).
    min_visible: fewest of the 33 landmarks with visibility >= 0.5 for a person to count.
    min_height_frac: smallest person height (landmark extent) as a fraction of the frame height.
    duplicate_*, tracked_duplicate_*: when two people count as one (see :func:`_same_person`);
        tolerances are fractions of the person's height, shares fractions of landmarks.
    occlusion_roi_iou: a candidate rejected as the duplicate of a kept person, but fitted in a region
        overlapping that person's by less than this IoU, is fitted again with the kept people painted
        out (:meth:`MediaPipeDetector._refit_occluded`): two people overlapping each other.
    occlusion_bone_width: width of the painted bones, as a fraction of the person's height.
    occlusion_max_inside: the refitted person is dropped when more than this share of its box lies
        inside the box of a painted person (a ghost fitted on the paint).
    max_people: at most this many people per frame (highest presence kept).
    num_threads: threads of each network.
    """

    max_side: int = 1280
    detect_every: int = 4
    tile_frac: float = 0.6
    tile_overlap: float = 0.3
    tile_margin: float = 0.5
    min_detection_score: float = 0.5
    nms_iou: float = 0.3
    min_presence: float = 0.5
    keep_presence: float = 0.01
    min_visible: int = 10
    min_height_frac: float = 0.1
    duplicate_iou: float = 0.5
    tracked_duplicate_iou: float = 0.9
    duplicate_tol: float = 0.2
    duplicate_share: float = 0.5
    tracked_duplicate_tol: float = 0.1
    tracked_duplicate_share: float = 0.7
    occlusion_roi_iou: float = 0.6
    occlusion_bone_width: float = 0.08
    occlusion_max_inside: float = 0.6
    max_people: int = 20
    num_threads: int = 1


def model_dir() -> Path:
    """Folder of the mediapipe package's ``modules`` (where the wheel keeps its model files)."""
    import importlib.util

    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the mediapipe package is not installed: pip install mediapipe==0.10.14")
    return Path(next(iter(spec.submodule_search_locations))) / "modules"


def _model(relative: str) -> Path:
    path = model_dir() / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the embedded detector needs the model files shipped in the "
            "mediapipe==0.10.14 wheel (reinstall it: pip install --force-reinstall mediapipe==0.10.14)"
        )
    return path


def _anchors() -> np.ndarray:
    """``(2254, 2)`` anchor centres of the pose detector (SsdAnchorsCalculator, fixed size)."""
    strides = [8, 16, 32, 32, 32]
    out = []
    layer = 0
    while layer < len(strides):
        n = 0
        stride = strides[layer]
        while layer < len(strides) and strides[layer] == stride:
            n += 2  # aspect ratio 1 plus the interpolated scale, per layer
            layer += 1
        size = math.ceil(DETECTOR_SIZE / stride)
        ys, xs = np.mgrid[0:size, 0:size]
        centres = np.stack([(xs + 0.5) / size, (ys + 0.5) / size], -1).reshape(-1, 1, 2)
        out.append(np.repeat(centres, n, axis=1).reshape(-1, 2))
    return np.concatenate(out).astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80, 80)))


@dataclass
class _Roi:
    """Rotated square region: centre (cx, cy), side ``size`` in working-image pixels, rotation in
    radians (crop x-axis = (cos r, sin r) in the image)."""

    cx: float
    cy: float
    size: float
    rotation: float
    carried: bool = False  # follows a person found in the previous frame
    occluded: bool = False  # that person overlapped another: fit it with the others painted out

    @classmethod
    def from_alignment(cls, hip: np.ndarray, top: np.ndarray, scale: float = 1.25, carried: bool = False) -> _Roi:
        dx, dy = top[0] - hip[0], top[1] - hip[1]
        rotation = math.pi / 2 - math.atan2(-dy, dx)
        rotation = (rotation + math.pi) % (2 * math.pi) - math.pi
        return cls(float(hip[0]), float(hip[1]), float(2 * math.hypot(dx, dy) * scale), rotation, carried)

    def crop_to_image(self) -> np.ndarray:
        """``(2, 3)`` affine from crop pixels (0..256) to working-image pixels."""
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        k = self.size / LANDMARK_SIZE
        a = np.array([[c * k, -s * k], [s * k, c * k]])
        t = np.array([self.cx, self.cy]) - a @ np.array([LANDMARK_SIZE / 2, LANDMARK_SIZE / 2])
        return np.hstack([a, t[:, None]])

    def box(self) -> np.ndarray:
        h = self.size / 2
        return np.array([self.cx - h, self.cy - h, self.cx + h, self.cy + h])


@dataclass
class _Found:
    """A person fitted in one region: score = presence x mean visibility; ``(33, 2)`` body landmarks
    and ``(33,)`` visibility in working-image pixels; ``box`` their extent; ``roi`` the region fitted
    and ``next_roi`` the region that follows the person into the next frame."""

    score: float
    body: np.ndarray
    visibility: np.ndarray
    box: np.ndarray
    roi: _Roi
    next_roi: _Roi


def _inside(a: np.ndarray, b: np.ndarray) -> float:
    """Share of box ``a`` (x0, y0, x1, y1) that lies inside box ``b``."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = (a[2] - a[0]) * (a[3] - a[1])
    return iw * ih / area if area > 0 else 1.0


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class MediaPipeDetector:
    """Multi-person BlazePose; see the module docstring. One instance per video stream at a time."""

    name = "mediapipe"

    def __init__(self, config: MediaPipeConfig | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.config = config or MediaPipeConfig()
        threads = self.config.num_threads
        self._det = Interpreter(model_path=str(_model("pose_detection/pose_detection.tflite")), num_threads=threads)
        self._lmk = Interpreter(model_path=str(_model("pose_landmark/pose_landmark_full.tflite")), num_threads=threads)
        self._det.allocate_tensors()
        self._lmk.allocate_tensors()
        self._det_in = self._det.get_input_details()[0]["index"]
        outs = {d["name"]: d["index"] for d in self._det.get_output_details()}
        self._det_boxes, self._det_scores = outs["Identity"], outs["Identity_1"]
        self._lmk_in = self._lmk.get_input_details()[0]["index"]
        outs = {d["name"]: d["index"] for d in self._lmk.get_output_details()}
        self._lmk_points, self._lmk_flag = outs["Identity"], outs["Identity_1"]
        self._anchors = _anchors()
        self.reset()

    def reset(self) -> None:
        self._rois: list[_Roi] = []
        self._frame = 0

    # -- person detector -------------------------------------------------------------------
    def _tiles(self, w: int, h: int) -> list[tuple[int, int, int, int]]:
        """``(x0, y0, width, height)`` regions searched by the detector: whole frame + tiles."""
        regions = [(0, 0, w, h)]
        cfg = self.config
        if cfg.tile_frac <= 0:
            return regions
        side = int(round(cfg.tile_frac * min(w, h)))
        step = max(1, int(side * (1 - cfg.tile_overlap)))
        xs = sorted({*range(0, max(w - side, 0) + 1, step), max(w - side, 0)})
        ys = sorted({*range(0, max(h - side, 0) + 1, step), max(h - side, 0)})
        return regions + [(x, y, side, side) for y in ys for x in xs]

    def _detect_region(self, img: np.ndarray, region: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Detections in one region: ``(N,)`` scores and ``(N, 12)`` = box (cx, cy, w, h) + 4
        keypoints, all in working-image pixels."""
        x0, y0, w, h = region
        crop = img[y0:y0 + h, x0:x0 + w]
        scale = DETECTOR_SIZE / max(w, h)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        resized = cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_LINEAR)
        pad_x, pad_y = (DETECTOR_SIZE - nw) // 2, (DETECTOR_SIZE - nh) // 2
        canvas = np.zeros((DETECTOR_SIZE, DETECTOR_SIZE, 3), np.float32)
        canvas[pad_y:pad_y + nh, pad_x:pad_x + nw] = resized.astype(np.float32) / 127.5 - 1.0
        self._det.set_tensor(self._det_in, canvas[None])
        self._det.invoke()
        raw = self._det.get_tensor(self._det_boxes)[0]
        scores = _sigmoid(np.clip(self._det.get_tensor(self._det_scores)[0, :, 0], -100, 100))
        keep = scores >= self.config.min_detection_score
        if not keep.any():
            return np.zeros(0, np.float32), np.zeros((0, 12), np.float32)
        raw, scores, anchors = raw[keep], scores[keep], self._anchors[keep]
        out = raw.copy()
        # box centre and keypoints are offsets from the anchor centre, in input pixels
        for k in range(0, 12, 2):
            if k == 2:  # w, h
                continue
            out[:, k] = raw[:, k] + anchors[:, 0] * DETECTOR_SIZE
            out[:, k + 1] = raw[:, k + 1] + anchors[:, 1] * DETECTOR_SIZE
        # to working-image pixels
        xs = [0, 4, 6, 8, 10]
        out[:, xs] = (out[:, xs] - pad_x) / scale + x0
        out[:, [1, 5, 7, 9, 11]] = (out[:, [1, 5, 7, 9, 11]] - pad_y) / scale + y0
        out[:, 2:4] /= scale
        if (w, h) != img.shape[1::-1]:  # a tile: drop people cut by an inner tile edge
            inside = self._inside_tile(out, region, img.shape[1], img.shape[0])
            scores, out = scores[inside], out[inside]
        return scores, out

    def _inside_tile(self, dets: np.ndarray, region: tuple[int, int, int, int], width: int, height: int) -> np.ndarray:
        """``(N,)`` True for detections whose body circle (hip centre, radius to the full-body
        point, x ``tile_margin``) does not cross an edge of the tile that lies inside the frame.
        Such people are whole in the frame pass or in a neighbouring tile; in this tile they are
        truncated, and a truncated view yields a squeezed duplicate skeleton."""
        x0, y0, w, h = region
        r = np.hypot(dets[:, 6] - dets[:, 4], dets[:, 7] - dets[:, 5]) * self.config.tile_margin
        hx, hy = dets[:, 4], dets[:, 5]
        ok = np.ones(len(dets), dtype=bool)
        if x0 > 0:
            ok &= hx - r >= x0
        if y0 > 0:
            ok &= hy - r >= y0
        if x0 + w < width:
            ok &= hx + r <= x0 + w
        if y0 + h < height:
            ok &= hy + r <= y0 + h
        return ok

    def _detect(self, img: np.ndarray) -> list[_Roi]:
        h, w = img.shape[:2]
        scores, dets = [], []
        for region in self._tiles(w, h):
            s, d = self._detect_region(img, region)
            scores.append(s)
            dets.append(d)
        scores_a, dets_a = np.concatenate(scores), np.concatenate(dets)
        merged = _weighted_nms(scores_a, dets_a, self.config.nms_iou)
        return [_Roi.from_alignment(d[4:6], d[6:8]) for d in merged]

    # -- landmarks -------------------------------------------------------------------------
    def _landmarks(self, img: np.ndarray, roi: _Roi) -> tuple[float, np.ndarray, np.ndarray]:
        """(presence, ``(39, 2)`` landmark pixels in the working image, ``(39,)`` visibility)."""
        a = roi.crop_to_image()
        crop = cv2.warpAffine(img, a, (LANDMARK_SIZE, LANDMARK_SIZE), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        self._lmk.set_tensor(self._lmk_in, (crop.astype(np.float32) / 255.0)[None])
        self._lmk.invoke()
        raw = self._lmk.get_tensor(self._lmk_points)[0].reshape(39, 5)
        presence = float(self._lmk.get_tensor(self._lmk_flag)[0, 0])  # already a probability
        pts = raw[:, :2] @ a[:, :2].T + a[:, 2]
        return presence, pts, _sigmoid(raw[:, 3])

    def _fit(self, img: np.ndarray, roi: _Roi, min_presence: float) -> _Found | None:
        """The person the landmark model finds in ``roi``, or None if it fails the checks."""
        cfg = self.config
        presence, pts, vis = self._landmarks(img, roi)
        if presence < min_presence:
            return None
        body, visibility = pts[:33], vis[:33]
        shown = visibility >= 0.3
        sel = body[shown] if shown.sum() >= 2 else body
        box = np.array([sel[:, 0].min(), sel[:, 1].min(), sel[:, 0].max(), sel[:, 1].max()])
        if (visibility >= 0.5).sum() < cfg.min_visible or (box[3] - box[1]) < cfg.min_height_frac * img.shape[0]:
            return None
        return _Found(presence * float(visibility.mean()), body, visibility, box, roi,
                      _Roi.from_alignment(pts[33], pts[34], carried=True))

    def _refit_occluded(self, img: np.ndarray, roi: _Roi, kept: list[_Found]) -> _Found | None:
        """Fit ``roi`` again with the people already kept painted out.

        Where two people overlap, the landmark model given the region of the one behind (or in
        front) often fits the other one's torso, and the candidate is then rejected as a duplicate.
        Painting the kept skeletons over (thick grey bones) leaves the model the other person.
        """
        masked = img.copy()
        for k in kept:
            kps = convert(np.concatenate([k.body, k.visibility[:, None]], 1), BLAZEPOSE33, HMMR25)
            width = max(2, int(self.config.occlusion_bone_width * (k.box[3] - k.box[1])))
            for a, b in HMMR25_BONES:
                if kps[a, 2] >= 0.3 and kps[b, 2] >= 0.3:
                    cv2.line(masked, tuple(int(v) for v in kps[a, :2]), tuple(int(v) for v in kps[b, :2]),
                             (128, 128, 128), width)
        cfg = self.config
        found = self._fit(masked, roi, cfg.min_presence)  # a new hypothesis: the new-person presence
        if found is None:
            return None
        for k in kept:  # still one of them, or a ghost inside the painted person
            if _same_person(found, k, cfg, followed=True) or _inside(found.box, k.box) > cfg.occlusion_max_inside:
                return None
        found.next_roi.occluded = any(_iou(found.box, k.box) > 0 for k in kept)
        return found

    def _keep(self, img: np.ndarray, candidates: list[_Found], kept: list[_Found]) -> None:
        """Add to ``kept`` each candidate that is not one of the people kept so far; a candidate
        fitted in a region of its own whose fit landed on a kept person is fitted again with the
        kept people painted out."""
        cfg = self.config
        for f in sorted(candidates, key=lambda f: -f.score):
            twin = next((k for k in kept if _same_person(f, k, cfg, followed=f.roi.carried)), None)
            if twin is None:
                kept.append(f)
            elif _iou(f.roi.box(), twin.roi.box()) < cfg.occlusion_roi_iou:
                if (refit := self._refit_occluded(img, f.roi, kept)) is not None:
                    kept.append(refit)

    def detect(self, frame: np.ndarray) -> list[Person]:
        """People in one ``(H, W, 3)`` uint8 RGB frame, keypoints in its pixels."""
        cfg = self.config
        h0, w0 = frame.shape[:2]
        factor = min(1.0, cfg.max_side / max(h0, w0))
        img = frame if factor == 1.0 else cv2.resize(frame, (round(w0 * factor), round(h0 * factor)), interpolation=cv2.INTER_LINEAR)
        rois = list(self._rois)
        if self._frame % cfg.detect_every == 0 or not rois:
            rois += self._detect(img)  # duplicates of carried regions are removed after landmarks
        self._frame += 1

        fits = [self._fit(img, roi, cfg.keep_presence if roi.carried else cfg.min_presence)
                for roi in rois if not roi.occluded]
        kept: list[_Found] = []
        self._keep(img, [f for f in fits if f is not None and f.roi.carried], kept)  # followed people first
        for roi in rois:  # then those followed through an overlap, fitted with the others painted out
            if roi.occluded and (refit := self._refit_occluded(img, roi, kept)) is not None:
                kept.append(refit)
        self._keep(img, [f for f in fits if f is not None and not f.roi.carried], kept)
        kept = kept[: cfg.max_people]
        self._rois = [k.next_roi for k in kept]
        return [
            Person(kps=convert(np.concatenate([k.body / factor, k.visibility[:, None]], 1), BLAZEPOSE33, HMMR25),
                   bbox=(k.box / factor).astype(np.float32), score=k.score)
            for k in kept
        ]


_FLIP33 = np.array([
    BLAZEPOSE33.index(n.replace("left_", "@").replace("right_", "left_").replace("@", "right_"))
    for n in BLAZEPOSE33.joints
])


def _same_person(a: _Found, b: _Found, cfg: MediaPipeConfig, *, followed: bool) -> bool:
    """Whether two found people are one (``a`` the candidate, ``b`` a person already kept;
    ``followed``: ``a`` was followed from the previous frame).

    True when their boxes overlap by IoU >= ``duplicate_iou``, or when a share of the landmarks
    visible in both lie close to each other, with the same or the left/right-swapped labels (a region
    that drifted onto part of a person, or a mirrored fit of the same person). A candidate followed
    from the previous frame must agree more closely (``tracked_duplicate_*``) to be merged, so people
    who cross or occlude each other keep their own skeletons.
    """
    if followed:  # only a close match merges a person followed from the previous frame
        iou, tol_frac, share = cfg.tracked_duplicate_iou, cfg.tracked_duplicate_tol, cfg.tracked_duplicate_share
    else:
        iou, tol_frac, share = cfg.duplicate_iou, cfg.duplicate_tol, cfg.duplicate_share
    if _iou(a.box, b.box) >= iou:
        return True
    tol = tol_frac * max(b.box[3] - b.box[1], 1.0)
    for perm in (slice(None), _FLIP33):
        pts_b, vis_b = b.body[perm], b.visibility[perm]
        both = (a.visibility >= 0.3) & (vis_b >= 0.3)
        if both.sum() >= 3 and (np.linalg.norm(a.body[both] - pts_b[both], axis=1) < tol).mean() >= share:
            return True
    return False


def _weighted_nms(scores: np.ndarray, dets: np.ndarray, iou: float) -> list[np.ndarray]:
    """MediaPipe's weighted NMS: clusters of overlapping boxes are averaged, weighted by score."""
    order = np.argsort(-scores)
    boxes = np.stack([dets[:, 0] - dets[:, 2] / 2, dets[:, 1] - dets[:, 3] / 2,
                      dets[:, 0] + dets[:, 2] / 2, dets[:, 1] + dets[:, 3] / 2], 1)
    remaining = list(order)
    out = []
    while remaining:
        top = remaining[0]
        cluster = [i for i in remaining if _iou(boxes[top], boxes[i]) > iou]
        w = scores[cluster]
        out.append((dets[cluster] * w[:, None]).sum(0) / w.sum())
        remaining = [i for i in remaining if i not in cluster]
    return out
