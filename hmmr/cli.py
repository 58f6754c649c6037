"""``hmmr``: one command line over the whole system (harvest, query, status, demo)."""

from __future__ import annotations

import csv
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from hmmr import cli_body, cli_dataset, cli_export, cli_mocap, cli_model, cli_orchestration, cli_plots, cli_predict, cli_warehouse
from hmmr.cli_common import HomeOpt, settings_for
from hmmr.prefect_env import configure

configure()

app = typer.Typer(
    help="hmmr: harvest pseudo-ground-truth 2D human motion from video (Kanazawa et al., "
    "'Learning 3D Human Dynamics from Video', CVPR 2019) into a DuckLake lakehouse, and query it.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(width=None if sys.stdout.isatty() else 160)
REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = REPO_ROOT / "samples"


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def _print(rows: list[dict], columns: list[str], fmt: OutputFormat, title: str | None = None) -> None:
    if fmt is OutputFormat.json:
        sys.stdout.write(json.dumps(rows, default=str, indent=1) + "\n")
    elif fmt is OutputFormat.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    else:
        table = Table(title=title, show_lines=False)
        for col in columns:
            table.add_column(col, overflow="fold")
        for row in rows:
            table.add_row(*("" if row[c] is None else str(row[c]) for c in columns))
        console.print(table)


@app.command()
def harvest(
    sources: Annotated[Path, typer.Argument(help="Sources file: text (URL/path per line, #hashtag, key=value), CSV with a 'url' column, or JSON list.", exists=True, dir_okay=False)],
    home: HomeOpt = None,
    detector: Annotated[str, typer.Option(help="2D pose backend: 'mediapipe' (embedded, CPU) or 'openpose' (BODY_25 in its container, or a local build: HMMR_OPENPOSE_BINARY).")] = "mediapipe",
    fps: Annotated[Optional[float], typer.Option(help="Decode at this frame rate instead of the video's own.")] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Also redo videos whose earlier attempt failed.")] = False,
    max_height: Annotated[int, typer.Option(help="Download the best format no taller than this (pixels).")] = 720,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    workers: Annotated[int, typer.Option(help="Videos at once, on a local Dask cluster of this many one-thread workers (1: one after another).")] = 1,
    dask_address: Annotated[Optional[str], typer.Option(help="Run the videos on this existing Dask scheduler (tcp://host:8786) instead.")] = None,
) -> None:
    """Download, validate, detect 2D poses, track, curate and store every video of SOURCES.

    Runs as the Prefect flow 'harvest'. Re-running resumes: finished videos are skipped and no row is
    ever duplicated. Bad inputs (dead links, non-videos, nobody in frame) become status rows.
    """
    from flows.harvest import harvest as harvest_flow

    result = harvest_flow(
        sources=str(sources.resolve()), home=str(settings_for(home).home.resolve()), detector=detector,
        fps=fps, retry_failed=retry_failed, max_height=max_height, progress=progress,
        workers=workers, dask_address=dask_address,
    )
    console.print(f"run {result['run_id']}: processed {result['processed'] or 'nothing new'}, skipped {result['skipped']} already harvested")


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="A read-only SQL query over videos, shots, detections, tracks, track_frames, curated_tracks.")],
    home: HomeOpt = None,
    format: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = OutputFormat.table,
    at_version: Annotated[Optional[int], typer.Option("--at-version", help="Query the lakehouse as of this snapshot.")] = None,
) -> None:
    """Run read-only SQL on the lakehouse and print the result. Writes, ATTACH and file access are refused."""
    from warehouse.catalog import ReadOnlyQueryError, read_only_query

    try:
        table = read_only_query(settings_for(home), query, at_version=at_version)
    except ReadOnlyQueryError as exc:
        console.print(f"[red]refused:[/red] {exc}")
        raise typer.Exit(2) from exc
    _print(table.to_pylist(), table.column_names, format)


@app.command()
def status(home: HomeOpt = None) -> None:
    """Summarise harvested videos by status."""
    from warehouse.catalog import read_only_query

    table = read_only_query(
        settings_for(home),
        "SELECT status, count(*) AS videos, sum(coalesce(n_frames, 0)) AS frames, "
        "sum(coalesce(n_tracks_kept, 0)) AS tracks_kept FROM videos GROUP BY status ORDER BY videos DESC",
    )
    _print(table.to_pylist(), table.column_names, OutputFormat.table, title="videos by status")


@app.command()
def render(
    video: Annotated[str, typer.Argument(help="A video_id, or text found in its source (e.g. a file name).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output: .mp4 for the whole video, .jpg/.png for one frame.")],
    frame: Annotated[Optional[int], typer.Option(help="Frame index to draw (needed for an image output).")] = None,
    home: HomeOpt = None,
) -> None:
    """Draw a harvested video's people (skeletons, boxes, track ids) from the lakehouse."""
    import cv2
    import numpy as np

    from pose_harvest.render import draw_people
    from pose_harvest.video import FrameStream, VideoWriter, probe
    from warehouse.catalog import read_only_query

    settings = settings_for(home)
    found = read_only_query(
        settings, "SELECT video_id, raw_path, fps FROM videos WHERE status = 'ok' AND (video_id = $v OR source LIKE '%' || $v || '%')",
        params={"v": video},
    ).to_pylist()
    if len(found) != 1:
        console.print(f"[red]{len(found)} harvested videos match {video!r}[/red] (use its video_id: hmmr sql \"SELECT video_id, source FROM videos\")")
        raise typer.Exit(1)
    vid, raw_path, fps = found[0]["video_id"], Path(found[0]["raw_path"]), found[0]["fps"]
    where = f"video_id = '{vid}'" + ("" if frame is None else f" AND frame = {int(frame)}")
    rows = read_only_query(settings, f"SELECT frame, raw_track_id, x0, y0, x1, y1, kp_x, kp_y, kp_conf FROM detections WHERE {where}").to_pylist()
    by_frame: dict[int, list[dict]] = {}
    for r in rows:
        by_frame.setdefault(r["frame"], []).append(r)

    def drawn(index: int, rgb: np.ndarray) -> np.ndarray:
        people = by_frame.get(index, [])
        kps = np.array([np.stack([p["kp_x"], p["kp_y"], p["kp_conf"]], -1) for p in people]).reshape(-1, 25, 3)
        boxes = np.array([[p["x0"], p["y0"], p["x1"], p["y1"]] for p in people]).reshape(-1, 4)
        return draw_people(rgb, kps, boxes, [p["raw_track_id"] for p in people])

    info = probe(raw_path)
    stream = FrameStream(raw_path, info.width, info.height, fps=None if abs(fps - info.fps) < 1e-6 else fps)
    if out.suffix.lower() in (".jpg", ".jpeg", ".png"):
        if frame is None:
            console.print("[red]an image output needs --frame N[/red]")
            raise typer.Exit(2)
        for index, rgb in stream:
            if index == frame:
                cv2.imwrite(str(out), cv2.cvtColor(drawn(index, rgb), cv2.COLOR_RGB2BGR))
                break
        else:
            console.print(f"[red]the video has no frame {frame}[/red]")
            raise typer.Exit(1)
    else:
        try:
            with VideoWriter(out, info.width, info.height, fps) as writer:
                for index, rgb in stream:
                    writer.write(drawn(index, rgb))
        except RuntimeError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from exc
    console.print(f"wrote {out}")


import_app = typer.Typer(help="Load data made elsewhere: 2D keypoints into the harvest tables (OpenPose output, tracked and curated as a harvest; annotated datasets with their own tracks), 3D motion capture into the mocap tables (BVH, 3DPW, Human3.6M).",
                         no_args_is_help=True)
app.add_typer(import_app, name="import")


class OpenPoseLayout(str, Enum):
    body25 = "body25"
    body25b = "body25b"
    coco18 = "coco18"


@import_app.command("openpose")
def import_openpose(
    folder: Annotated[Path, typer.Argument(help="Folder of OpenPose --write_json files, one per frame (BODY_25, BODY_25B or COCO-18).", exists=True, file_okay=False)],
    video: Annotated[str, typer.Option("--video", help="The video the JSON was made from: its file, or the video_id of a stored video.")],
    layout: Annotated[Optional[OpenPoseLayout], typer.Option(help="Keypoint layout of the files (default: told from the keypoint count and the neck's position).")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Replace the video's detections even if another detector made them.")] = False,
    home: HomeOpt = None,
) -> None:
    """Import OpenPose JSON for one video: its people are tracked, curated and stored like a harvest's.

    Idempotent: importing the same folder again replaces the video's rows with identical ones.
    """
    from pose_harvest.keypoints import LAYOUTS
    from pose_harvest.openpose_json import OpenPoseFormatError
    from warehouse.importers.openpose import ImportRefused
    from warehouse.importers.openpose import import_openpose as run_import

    try:
        res = run_import(folder, video, settings_for(home), layout=LAYOUTS[layout.value] if layout else None, replace=replace)
    except (ImportRefused, OpenPoseFormatError) as exc:
        console.print(f"[red]not imported:[/red] {exc}")
        raise typer.Exit(1) from exc
    missing = f", {res.missing_frames} frames without a file" if res.missing_frames else ""
    replaced = f"; replaced the rows from {res.replaced}" if res.replaced else ""
    console.print(f"{res.video_id}: {res.layout}, {res.n_frames} frames{missing}, {res.n_detections} people, "
                  f"{res.n_tracks} tracks ({res.n_tracks_kept} kept){replaced}")


DEMO_QUERY = (
    "SELECT regexp_extract(source, '([^/]+)[.]mp4$', 1) AS video, status, width || 'x' || height AS size, "
    "n_frames AS frames, round(fps, 1) AS fps, max_people, n_tracks AS tracks, n_tracks_kept AS kept "
    "FROM videos ORDER BY video"
)


@app.command()
def demo(home: HomeOpt = None) -> None:
    """Harvest the bundled sample videos (samples/, BSD-3) and print one row per video from SQL."""
    settings = settings_for(home)
    settings.ensure_dirs()
    sources = settings.home / "demo_sources.txt"
    lines = [f"{p.resolve()} #demo" for p in sorted(SAMPLES.glob("*.mp4"))]
    if not lines:
        console.print(f"[red]no sample videos in {SAMPLES}[/red]")
        raise typer.Exit(1)
    sources.write_text("\n".join(lines) + "\n")
    harvest(sources=sources, home=settings.home)
    console.print(f"\n$ hmmr sql \"{DEMO_QUERY}\"")
    sql(DEMO_QUERY, home=settings.home)


cli_orchestration.register(app)
cli_model.register(app, HomeOpt)
cli_body.register(app)
cli_dataset.register(app, import_app)
cli_mocap.register(import_app, app)
cli_export.register(app, HomeOpt)
cli_plots.register(app, HomeOpt)
cli_warehouse.register(app)
cli_predict.register(app, HomeOpt)

if __name__ == "__main__":
    app()
