"""Mocap import speed: BVH parse, forward kinematics and resampling per file, and ``import_bvh`` into a
fresh lakehouse. Prints, measured in this one run, per file: frames in the file and stored, seconds for
each step, and how many seconds of motion one second of compute turns into joints (the ratio).

    .venv/bin/python benchmarks/mocap.py [BVH files or folders]   # default: tests/data/cmu_bvh
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from hmmr.config import Settings
from warehouse.importers.bvh import bvh_files, import_bvh, read_bvh_file, resample

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[REPO / "tests" / "data" / "cmu_bvh"])
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args()
    files = bvh_files(args.paths)
    print(f"{'file':<14}{'frames in':>10}{'out':>6}{'parse s':>9}{'FK s':>8}{'resample+FK s':>15}{'motion s / s':>14}")
    for f in files:
        t0 = time.perf_counter()
        read = read_bvh_file(f)
        t1 = time.perf_counter()
        read.motion.positions()
        t2 = time.perf_counter()
        out = resample(read.motion, args.fps)
        out.positions()
        t3 = time.perf_counter()
        duration = (read.motion.n_frames - 1) / read.motion.fps
        print(f"{f.name:<14}{read.frames_in_file:>10}{out.n_frames:>6}{t1 - t0:>9.3f}{t2 - t1:>8.3f}{t3 - t2:>15.3f}"
              f"{duration / (t1 - t0 + t3 - t2):>14.0f}")
    with tempfile.TemporaryDirectory() as home:
        t0 = time.perf_counter()
        result = import_bvh(files, Settings(home=Path(home)), fps=args.fps)
        took = time.perf_counter() - t0
    frames = sum(s.n_frames for s in result.sequences)
    print(f"import_bvh: {len(result.sequences)} sequences, {frames} stored frames in {took:.2f} s "
          f"(a fresh lakehouse, one transaction), {len(result.errors)} skipped")


if __name__ == "__main__":
    main()
