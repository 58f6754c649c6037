"""Harvest benchmark on the sample videos: where the time goes, and how well people are found.

Prints, measured in this one run:
* decode time alone (ffmpeg raw pipe) and pose-model time alone (detector over frames already in
  memory), per video and in total;
* the full harvest wall time (the Prefect flow: probe, decode, detect, track, curate, store) and the
  overhead ratio wall / (decode + pose)  (target <= 1.3, goal 1.1);
* end-to-end frames per second, and per core;
* per video, the fraction of frames whose people count matches the expected count
  (samples/expected_people.json), read back from the lakehouse with SQL.

A 1280x720 copy of the Sports2D clip is added so the 720p figure is measured too.

    .venv/bin/python benchmarks/harvest.py [--videos N] [--home DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from hmmr.prefect_env import configure

configure()

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"


def make_720p(src: Path, dst: Path) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-vf", "scale=1280:720", "-an",
                    "-c:v", "libx264", "-crf", "20", str(dst)], check=True)
    return dst


def decode_only(path: Path) -> tuple[float, int, list]:
    from pose_harvest.video import FrameStream, probe

    info = probe(path)
    t = time.perf_counter()
    frames = [f.copy() for _, f in FrameStream(path, info.width, info.height)]
    return time.perf_counter() - t, len(frames), frames


def pose_only(frames: list) -> float:
    from pose_harvest.detectors import get_detector

    det = get_detector("mediapipe")
    det.reset()
    t = time.perf_counter()
    for f in frames:
        det.detect(f)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, default=None, help="lakehouse folder (default: a temporary one)")
    args = ap.parse_args()
    expected = json.loads((SAMPLES / "expected_people.json").read_text())
    work = Path(tempfile.mkdtemp(prefix="hmmr-bench-"))
    home = args.home or work / "home"
    videos = sorted(SAMPLES.glob("*.mp4")) + [make_720p(SAMPLES / "sports2d_demo.mp4", work / "sports2d_720p.mp4")]

    print(f"{'video':28s} {'frames':>6s} {'decode s':>9s} {'pose s':>8s} {'pose fps':>9s}")
    decode_total = pose_total = 0.0
    n_total = 0
    for v in videos:
        dec, n, frames = decode_only(v)
        pose = pose_only(frames)
        del frames
        decode_total += dec
        pose_total += pose
        n_total += n
        print(f"{v.stem:28s} {n:6d} {dec:9.2f} {pose:8.2f} {n / pose:9.1f}")

    from flows.harvest import harvest
    from hmmr.config import Settings
    from warehouse.catalog import read_only_query

    from prefect import flow

    @flow(name="warm-up")
    def warm_up() -> None:
        """Starts Prefect's ephemeral API once, so the harvest below is timed on a warm API."""

    t = time.perf_counter()
    warm_up()
    start_s = time.perf_counter() - t
    sources = work / "sources.txt"
    sources.write_text("".join(f"{v}\n" for v in videos))
    t = time.perf_counter()
    harvest(sources=str(sources), home=str(home), progress=False)
    wall = time.perf_counter() - t
    cores = os.cpu_count() or 1
    print(f"\nall videos: {n_total} frames; decode {decode_total:.2f} s, pose {pose_total:.2f} s, "
          f"harvest wall {wall:.2f} s (Prefect's one-off API start before it: {start_s:.1f} s)")
    print(f"overhead ratio wall / (decode + pose) = {wall / (decode_total + pose_total):.2f}  (target <= 1.3, goal 1.1)")
    print(f"end-to-end {n_total / wall:.1f} frames/s on {cores} cores = {n_total / wall / cores:.1f} frames/s per core")

    print("\nframes whose people count matches the expected count:")
    settings = Settings(home=home)
    for v in videos:
        key = v.stem.replace("_720p", "_demo") if v.stem.startswith("sports2d") else v.stem
        exp = expected[key]
        rows = read_only_query(settings, f"""
            WITH f AS (SELECT range AS frame FROM range((SELECT n_frames FROM videos WHERE source LIKE '%/{v.name}'))),
                 d AS (SELECT frame, count(*) AS n FROM detections JOIN videos USING (video_id)
                       WHERE source LIKE '%/{v.name}' GROUP BY frame)
            SELECT f.frame, coalesce(d.n, 0) AS n, (SELECT fps FROM videos WHERE source LIKE '%/{v.name}') AS fps
            FROM f LEFT JOIN d USING (frame) ORDER BY f.frame""").to_pylist()
        end = exp.get("to_second") or float("inf")
        scored = [r for r in rows if exp["from_second"] <= r["frame"] / r["fps"] < end]
        match = sum(r["n"] == exp["count"] for r in scored) / max(len(scored), 1)
        more = sum(r["n"] > exp["count"] for r in scored) / max(len(scored), 1)
        print(f"  {v.stem:28s} expected {exp['count']}: {100 * match:5.1f} % of {len(scored)} frames "
              f"({100 * more:.1f} % with more people)")


if __name__ == "__main__":
    main()
