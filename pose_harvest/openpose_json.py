"""Read a folder of OpenPose ``--write_json`` output: one file per frame, any of its body layouts.

OpenPose writes ``<name>_<frame:012d>_keypoints.json`` (other tools rename them, e.g. Pose2Sim's
``cam01.0012.json``): the frame index is the last number in the file name. Each file holds
``{"people": [{"pose_keypoints_2d": [x0, y0, c0, x1, ...]}, ...]}`` in pixels of the video; an
undetected keypoint is ``(0, 0, 0)``. A frame with nobody has ``"people": []``; a frame whose file is
missing counts as a frame with nobody and is reported in :attr:`OpenPoseFolder.missing`.

The layout follows from the keypoint count (18: COCO-18, 25: BODY_25 or BODY_25B). BODY_25 and
BODY_25B both have 25 keypoints; they are told apart by where the neck is: BODY_25's keypoint 1
sits between its shoulders 2 and 5, BODY_25B's keypoint 17 between its shoulders 5 and 6.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pose_harvest.detections import VideoDetections
from pose_harvest.detectors.base import Person
from pose_harvest.keypoints import BODY25, BODY25B, COCO18, HMMR25, Layout, bbox_from_keypoints, convert

LAYOUT_BY_COUNT = {18: (COCO18,), 25: (BODY25, BODY25B)}
VISIBLE = 0.1  # OpenPose confidence at which HMMR counts a keypoint as visible

_NUMBER = re.compile(r"(\d+)")


class OpenPoseFormatError(ValueError):
    """The folder holds no OpenPose JSON, or files that are not OpenPose JSON."""


@dataclass(frozen=True)
class OpenPoseFolder:
    """People of every frame of one OpenPose output folder, in the file's own layout.

    people[i]: ``(N_i, K, 3)`` float32 keypoints (x, y pixels, confidence) of frame ``i``;
    layout: the detected (or given) layout with K keypoints; missing: frame indices with no file;
    first_frame: the frame number of ``people[0]`` in the file names (usually 0).
    """

    people: list[np.ndarray]
    layout: Layout
    missing: list[int]
    first_frame: int

    @property
    def n_frames(self) -> int:
        return len(self.people)

    def hmmr25(self) -> list[np.ndarray]:
        """``people`` converted to HMMR-25: ``(N_i, 25, 3)`` per frame (heels in slots 0 and 5)."""
        return [convert(p, self.layout, HMMR25) for p in self.people]


def frame_number(path: Path) -> int:
    """The frame index in an OpenPose file name: the last number of the stem (``_keypoints`` aside)."""
    numbers = _NUMBER.findall(path.name.removesuffix(".json").removesuffix("_keypoints"))
    if not numbers:
        raise OpenPoseFormatError(f"no frame number in the file name {path.name!r}")
    return int(numbers[-1])


def _people(path: Path) -> list[list[float]]:
    try:
        data = json.loads(path.read_text())
        return [p["pose_keypoints_2d"] for p in data["people"]]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise OpenPoseFormatError(f"{path.name}: not OpenPose JSON ({type(exc).__name__}: {exc})") from exc


def _neck_residual(kps: np.ndarray, neck: int, left: int, right: int) -> float:
    """Median distance of keypoint ``neck`` from the mid-point of two shoulders, in shoulder widths,
    over the people where all three are detected (inf when none is)."""
    k = kps.reshape(-1, kps.shape[-2], 3)
    seen = (k[:, [neck, left, right], 2] > VISIBLE).all(1)
    if not seen.any():
        return float("inf")
    k = k[seen]
    mid = (k[:, left, :2] + k[:, right, :2]) / 2
    width = np.linalg.norm(k[:, left, :2] - k[:, right, :2], axis=1) + 1e-6
    return float(np.median(np.linalg.norm(k[:, neck, :2] - mid, axis=1) / width))


def detect_layout(people: list[np.ndarray]) -> Layout:
    """The OpenPose layout of these ``(N_i, K, 3)`` people (see the module docstring for the rule)."""
    count = people[0].shape[1] if people else 25
    if count not in LAYOUT_BY_COUNT:
        raise OpenPoseFormatError(f"{count} keypoints per person: expected 18 (COCO) or 25 (BODY_25/BODY_25B)")
    candidates = LAYOUT_BY_COUNT[count]
    stacked = np.concatenate(people)
    if len(candidates) == 1 or not len(stacked):  # nobody anywhere: the layout does not matter
        return candidates[0]
    body25 = _neck_residual(stacked, BODY25.index("neck"), BODY25.index("left_shoulder"), BODY25.index("right_shoulder"))
    body25b = _neck_residual(stacked, BODY25B.index("neck"), BODY25B.index("left_shoulder"), BODY25B.index("right_shoulder"))
    if min(body25, body25b) == float("inf"):
        raise OpenPoseFormatError("cannot tell BODY_25 from BODY_25B (no person shows a neck and both shoulders): give the layout")
    return BODY25 if body25 <= body25b else BODY25B


def read_folder(folder: str | Path, layout: Layout | None = None, n_frames: int | None = None) -> OpenPoseFolder:
    """Read every ``*.json`` of ``folder`` (see the module docstring).

    layout: skip detection and use this one. n_frames: the video's frame count, so missing files at
    the end are counted too (default: up to the last file). Raises :class:`OpenPoseFormatError`.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise OpenPoseFormatError(f"not a folder: {folder}")
    files = {frame_number(p): p for p in folder.glob("*.json")}
    if not files:
        raise OpenPoseFormatError(f"no OpenPose .json files in {folder}")
    first = min(files)
    total = max(max(files) - first + 1, (n_frames or 0))
    raw: list[list[list[float]]] = [_people(files[first + i]) if first + i in files else [] for i in range(total)]
    lengths = {len(k) for frame in raw for k in frame}
    if len(lengths) > 1 or any(n % 3 for n in lengths):
        raise OpenPoseFormatError(f"pose_keypoints_2d lengths {sorted(lengths)}: expected one multiple of 3 for every person")
    count = lengths.pop() // 3 if lengths else len(layout or BODY25)
    people = [np.asarray(frame, np.float32).reshape(len(frame), count, 3) for frame in raw]
    if layout is None:
        layout = detect_layout(people)
    elif count != len(layout):
        raise OpenPoseFormatError(f"layout {layout.name} has {len(layout)} keypoints, the files have {count}")
    missing = [i for i in range(total) if first + i not in files]
    return OpenPoseFolder(people=people, layout=layout, missing=missing, first_frame=first)


def to_persons(kps: np.ndarray) -> list[Person]:
    """People of one frame from ``(N, 25, 3)`` HMMR-25 keypoints: box = extent of the visible
    keypoints, score = their mean confidence. People with fewer than 2 visible keypoints are dropped."""
    out = []
    for k in kps:
        vis = k[:, 2] >= VISIBLE
        if vis.sum() < 2:
            continue
        out.append(Person(kps=k.astype(np.float32), bbox=bbox_from_keypoints(k, VISIBLE).astype(np.float32),
                          score=float(k[vis, 2].mean())))
    return out


def to_video_detections(op: OpenPoseFolder, fps: float, shots: list[tuple[int, int]], detect_s: float = 0.0) -> VideoDetections:
    """The folder as the per-frame people a harvest produces (``detect_s``: OpenPose's run time)."""
    return VideoDetections(people=[to_persons(k) for k in op.hmmr25()], fps=fps, shots=shots, decode_s=0.0, detect_s=detect_s)
