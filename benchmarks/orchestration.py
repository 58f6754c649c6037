"""Orchestration benchmark: 8 real videos harvested one after another and with ``workers=2``.

The 8 videos are the 4 sample clips plus 4 real variants made from them with ffmpeg (mirrored,
re-encoded smaller, trimmed), so each is a different video with its own rows. Prints, measured in
this one run:

* wall time of the sequential harvest and of the Dask harvest (``workers``, a local cluster), and
  the speed-up (target >= 1.7 on 2 cores);
* the CPU time of both, and the most ``workers`` cores can give: a sequential harvest already keeps
  more than one core busy (ffmpeg decodes the next frames while the pose model runs), so the ceiling
  is cores / (CPU time / wall time of the sequential run), below 2 on 2 cores;
* whether both runs stored the same rows;
* Prefect's overhead per task run: the wall time of an empty task, timed over many calls, times the
  number of task runs a harvest makes (target < 50 ms per task);
* the machine's load average around each harvest: other work on the machine skews the timings.

Both harvests run on a warm Prefect API (the ephemeral server that ``hmmr harvest`` uses, or
``PREFECT_API_URL``). Do not run it beside other heavy work: on 2 cores the numbers would be skewed.

    .venv/bin/python benchmarks/orchestration.py [--workers 2] [--empty-tasks 200]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from hmmr.prefect_env import configure  # noqa: E402

configure()

SAMPLES = REPO / "samples"
TABLES = ("videos", "shots", "detections", "tracks", "track_frames")
VARIANTS = {  # name: (sample it is made from, ffmpeg video filter)
    "sports2d_mirrored": ("sports2d_demo", "hflip"),
    "multi_cam01_small": ("pose2sim_multi_cam01", "scale=544:960"),
    "single_cam01_mirrored": ("pose2sim_single_cam01", "hflip"),
    "multi_cam03_first_60": ("pose2sim_multi_cam03", "trim=end_frame=60,setpts=PTS-STARTPTS"),
}


def make_videos(folder: Path) -> list[Path]:
    """The 4 samples (copied) and their 4 variants, re-encoded with x264."""
    videos = []
    for src in sorted(SAMPLES.glob("*.mp4")):
        videos.append(Path(shutil.copy(src, folder / src.name)))
    for name, (sample, vf) in VARIANTS.items():
        out = folder / f"{name}.mp4"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(SAMPLES / f"{sample}.mp4"), "-vf", vf, "-an",
                        "-c:v", "libx264", "-crf", "20", "-pix_fmt", "yuv420p", str(out)], check=True)
        videos.append(out)
    return videos


def empty_task_overhead(n: int) -> float:
    """Seconds of wall time per call of a task that does nothing, inside one flow run."""
    from prefect import flow, task

    @task(name="empty")
    def empty() -> None:
        """Nothing: what is left is Prefect's own cost of a task run."""

    @flow(name="empty-tasks")
    def many(n: int) -> float:
        empty()  # first call pays one-off set-up
        t = time.perf_counter()
        for _ in range(n):
            empty()
        return (time.perf_counter() - t) / n

    return many(n)


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the ffmpeg decoders), user + system."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def harvest_wall(sources: Path, home: Path, workers: int) -> tuple[float, float, dict, int]:
    """Wall time, CPU time, result and number of task runs (nested ones included) of one harvest
    flow run (the local Dask workers are threads of this process, so their CPU time is counted)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.harvest import harvest

    load_before = os.getloadavg()[0]
    cpu, t = cpu_seconds(), time.perf_counter()
    state = harvest(sources=str(sources), home=str(home), progress=False, workers=workers, return_state=True)
    wall, cpu = time.perf_counter() - t, cpu_seconds() - cpu
    print(f"  harvest workers={workers}: {wall:.1f} s, CPU {cpu:.1f} s; 1-min load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after")
    flow_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        n_tasks = len(client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))))
    return wall, cpu, state.result(), n_tasks


def table_dump(home: Path) -> dict:
    from hmmr.config import Settings
    from warehouse.catalog import read_only_query

    exclude = {"videos": "EXCLUDE (harvested_at, run_id, raw_path)"}
    return {t: read_only_query(Settings(home=home), f"SELECT * {exclude.get(t, '')} FROM {t} ORDER BY ALL").to_pylist()
            for t in TABLES}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--empty-tasks", type=int, default=200)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hmmr-orch-bench-"))
    videos = make_videos(work)
    sources = work / "sources.txt"
    sources.write_text("".join(f"{v}\n" for v in videos))

    per_task = empty_task_overhead(args.empty_tasks)  # also warms up the Prefect API
    seq_wall, seq_cpu, seq, n_tasks = harvest_wall(sources, work / "home-sequential", workers=1)
    par_wall, par_cpu, par, n_par_tasks = harvest_wall(sources, work / f"home-workers{args.workers}", workers=args.workers)
    same = table_dump(work / "home-sequential") == table_dump(work / f"home-workers{args.workers}")

    print(f"{len(videos)} videos ({', '.join(v.stem for v in videos)}); {os.cpu_count()} cores")
    print(f"sequential harvest:        {seq_wall:7.1f} s  {seq['processed']}")
    print(f"workers={args.workers} (Dask) harvest:  {par_wall:7.1f} s  {par['processed']}")
    cores = min(args.workers, os.cpu_count() or 1)
    busy = seq_cpu / seq_wall  # cores the sequential run already keeps busy (ffmpeg decodes beside the pose model)
    ceiling = cores / busy
    print(f"speed-up:                  {seq_wall / par_wall:7.2f}  (target >= 1.7)")
    print(f"cores busy, sequential:    {busy:7.2f}  ({seq_cpu:.1f} s CPU); workers={args.workers}: {par_cpu / par_wall:.2f} ({par_cpu:.1f} s CPU)")
    print(f"most {cores} cores can give:  {ceiling:7.2f}  ({cores} / cores busy sequentially) -> "
          f"{100 * seq_wall / par_wall / ceiling:.0f} % of it reached")
    print(f"same rows in every table:  {same}")
    print(f"empty task run:            {1000 * per_task:7.1f} ms  over {args.empty_tasks} calls (target < 50 ms)")
    print(f"task runs per harvest:     {n_tasks:7d}  (Dask run: {n_par_tasks}) -> Prefect overhead about {n_tasks * per_task:.1f} s "
          f"= {100 * n_tasks * per_task / seq_wall:.1f} % of the sequential wall time")


if __name__ == "__main__":
    main()
