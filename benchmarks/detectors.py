"""Detector comparison: the embedded MediaPipe detector against real OpenPose output, same frames.

The OpenPose side is the real OpenPose BODY_25B JSON recorded for ``samples/pose2sim_single_cam01.mp4``
(``tests/data/openpose_pose2sim_cam01_body25b``, from Pose2Sim). Prints, measured in this one run:

* people found per frame by each, and how many OpenPose people MediaPipe matched;
* per HMMR keypoint, PCK at 0.05 and 0.1 of the person's height (OpenPose's keypoint extent): the
  share of OpenPose keypoints (confidence >= 0.1) that MediaPipe puts within that distance, over
  people matched one-to-one per frame (Hungarian on the mean keypoint distance);
* frames per second: MediaPipe's pose model on this CPU, and reading the OpenPose JSON (OpenPose's own
  inference needs its GPU build: run ``hmmr harvest --detector openpose`` on a GPU machine to time it).

    .venv/bin/python benchmarks/detectors.py [--video PATH --openpose DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from pose_harvest import openpose_json
from pose_harvest.detectors import get_detector
from pose_harvest.keypoints import HMMR25
from pose_harvest.video import FrameStream, probe

REPO = Path(__file__).resolve().parents[1]
VISIBLE = openpose_json.VISIBLE


def match(ref: np.ndarray, ours: np.ndarray) -> list[tuple[int, int]]:
    """One-to-one pairs (ref index, ours index) minimising the mean distance over keypoints both see."""
    if not len(ref) or not len(ours):
        return []
    cost = np.full((len(ref), len(ours)), 1e9)
    for i, r in enumerate(ref):
        for j, o in enumerate(ours):
            both = (r[:, 2] >= VISIBLE) & (o[:, 2] > 0)
            if both.sum() >= 4:
                cost[i, j] = np.linalg.norm(r[both, :2] - o[both, :2], axis=1).mean() / _height(r)
    rows, cols = linear_sum_assignment(cost)
    return [(i, j) for i, j in zip(rows, cols) if cost[i, j] < 0.5]  # farther than half a body: not the same person


def _height(kps: np.ndarray) -> float:
    y = kps[kps[:, 2] >= VISIBLE, 1]
    return float(np.ptp(y)) if len(y) > 1 else 1.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", type=Path, default=REPO / "samples" / "pose2sim_single_cam01.mp4")
    ap.add_argument("--openpose", type=Path, default=REPO / "tests" / "data" / "openpose_pose2sim_cam01_body25b")
    args = ap.parse_args()

    info = probe(args.video)
    t = time.perf_counter()
    ref = openpose_json.read_folder(args.openpose, n_frames=info.n_frames)
    ref_people = ref.hmmr25()
    read_s = time.perf_counter() - t

    frames = [f.copy() for _, f in FrameStream(args.video, info.width, info.height)]
    det = get_detector("mediapipe")
    det.reset()
    t = time.perf_counter()
    ours = [det.detect(f) for f in frames]
    pose_s = time.perf_counter() - t
    n = min(len(frames), ref.n_frames)

    hits = {th: np.zeros(25) for th in (0.05, 0.1)}
    total = np.zeros(25)
    matched = ref_count = 0
    for f in range(n):
        ours_k = np.array([p.kps for p in ours[f]]).reshape(-1, 25, 3)
        refs = np.array([r for r in ref_people[f] if (r[:, 2] >= VISIBLE).sum() >= 4]).reshape(-1, 25, 3)
        ref_count += len(refs)
        for i, j in match(refs, ours_k):
            matched += 1
            r, o = refs[i], ours_k[j]
            seen = (r[:, 2] >= VISIBLE) & (o[:, 2] > 0)
            dist = np.linalg.norm(r[:, :2] - o[:, :2], axis=1) / _height(r)
            total += seen
            for th in hits:
                hits[th] += seen & (dist <= th)

    print(f"{args.video.name}: {n} frames, OpenPose layout {ref.layout.name}")
    print(f"people per frame: OpenPose {ref_count / n:.2f}, MediaPipe {sum(len(p) for p in ours[:n]) / n:.2f}; "
          f"MediaPipe matched {matched} of {ref_count} OpenPose people ({100 * matched / max(ref_count, 1):.1f} %)")
    print(f"\n{'keypoint':16s} {'n':>5s} {'PCK@0.05':>9s} {'PCK@0.1':>8s}")
    for k, name in enumerate(HMMR25.joints):
        if total[k]:
            print(f"{name:16s} {int(total[k]):5d} {hits[0.05][k] / total[k]:9.3f} {hits[0.1][k] / total[k]:8.3f}")
        else:
            print(f"{name:16s} {0:5d} {'-':>9s} {'-':>8s}   (not given by both)")
    seen = total > 0
    print(f"{'all':16s} {int(total.sum()):5d} {hits[0.05][seen].sum() / total.sum():9.3f} {hits[0.1][seen].sum() / total.sum():8.3f}")
    print(f"\nframes/s: MediaPipe pose model {n / pose_s:.1f} (CPU, 1 thread per network); "
          f"OpenPose JSON read {ref.n_frames / read_s:.0f} (inference itself needs the GPU build, not run here)")


if __name__ == "__main__":
    main()
