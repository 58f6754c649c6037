"""``hmmr dataset export|import`` and ``hmmr import posetrack|penn-action|tfrecord``: datasets in and out."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from hmmr.cli_common import HomeOpt, settings_for

console = Console()

FilesArg = Annotated[list[Path], typer.Argument(exists=True, help="Annotation files (or folders of them).")]


class CropFormat(str, Enum):
    jpeg = "jpeg"
    mp4 = "mp4"


def _fail(what: str, exc: Exception, code: int = 1):
    console.print(f"[red]{what}:[/red] {exc}")
    raise typer.Exit(code) from exc


def export(
    query: Annotated[str, typer.Argument(help="Read-only SQL returning video_id (and track_id) of the tracks to export, "
                                              "e.g. \"SELECT video_id, track_id FROM curated_tracks WHERE tags LIKE '%dance%'\".")],
    to: Annotated[Path, typer.Option("--to", help="New (or empty) folder to write the dataset into.")],
    crops: Annotated[Optional[CropFormat], typer.Option(help="Also write 224x224 crops around each track's box: a JPEG per frame or an MP4 per track.")] = None,
    at_version: Annotated[Optional[int], typer.Option("--at-version", help="Read the lakehouse as of this snapshot (default: the latest).")] = None,
    home: HomeOpt = None,
) -> None:
    """Write the selected tracks (videos, shots, tracks, track_frames, detections) as Parquet plus a
    manifest.json with the schema version, the snapshot read, row counts and sha256 checksums."""
    from warehouse.catalog import ReadOnlyQueryError
    from warehouse.exchange.dataset import DatasetError, export_dataset

    try:
        m = export_dataset(settings_for(home), query, to, crops=crops.value if crops else None, at_version=at_version)
    except ReadOnlyQueryError as exc:
        _fail("refused", exc, 2)
    except (DatasetError, FileNotFoundError) as exc:
        _fail("not exported", exc)
    rows = ", ".join(f"{n} {t['rows']}" for n, t in m["tables"].items())
    extra = f"; {m['crops']['frames']} crops ({m['crops']['format']})" if "crops" in m else ""
    skipped = f", {len(m['crops']['skipped'])} videos without a raw file skipped" if m.get("crops", {}).get("skipped") else ""
    console.print(f"wrote {to} at snapshot {m['snapshot_id']}: {rows}{extra}{skipped}")


def import_(
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="A folder written by 'hmmr dataset export'.")],
    replace: Annotated[bool, typer.Option("--replace", help="Replace videos that are already in the lakehouse.")] = False,
    home: HomeOpt = None,
) -> None:
    """Verify a dataset folder (every checksum and row count) and load its rows into the lakehouse."""
    from warehouse.exchange.dataset import DatasetError, import_dataset

    try:
        s = import_dataset(folder, settings_for(home), replace=replace)
    except DatasetError as exc:
        _fail("not imported", exc)
    rows = ", ".join(f"{n} {c}" for n, c in s.rows.items())
    console.print(f"imported {s.videos} videos ({rows}) from snapshot {s.snapshot_id} of the source"
                  + (f"; replaced {s.replaced}" if s.replaced else ""))


def _report(results) -> None:
    for r in results:
        note = f" ({r.note})" if r.note else ""
        console.print(f"{r.video_id}: {r.n_frames} frames, {r.n_people} people, {r.n_detections} detections, "
                      f"{r.n_tracks_kept} tracks kept{note}")


def posetrack(
    files: FilesArg,
    images: Annotated[Optional[Path], typer.Option(help="Dataset root the files' image paths are relative to (for the frame size).")] = None,
    home: HomeOpt = None,
) -> None:
    """Import PoseTrack 2018 annotation JSON: one video per sequence, its track_ids as ground-truth tracks."""
    from warehouse.importers.posetrack import PoseTrackFormatError, import_posetrack

    paths = [p for f in files for p in (sorted(f.glob("*.json")) if f.is_dir() else [f])]
    try:
        _report(import_posetrack(paths, settings_for(home), images_root=images))
    except PoseTrackFormatError as exc:
        _fail("not imported", exc)


def penn_action(files: FilesArg, home: HomeOpt = None) -> None:
    """Import Penn Action label files (labels/NNNN.mat, or the labels folder): one person per video."""
    from warehouse.importers.penn_action import PennActionFormatError, import_penn_action

    try:
        _report(import_penn_action(files, settings_for(home)))
    except PennActionFormatError as exc:
        _fail("not imported", exc)


def tfrecord(files: FilesArg, home: HomeOpt = None) -> None:
    """Import the authors' HMMR tfrecords (InstaVariety ...) without TensorFlow; CRCs are verified."""
    from warehouse.importers.tfrecord import TFRecordError, import_tfrecords

    paths = [p for f in files for p in (sorted(f.glob("*.tfrecord")) if f.is_dir() else [f])]
    try:
        _report(import_tfrecords(paths, settings_for(home)))
    except TFRecordError as exc:
        _fail("not imported", exc)


def register(app: typer.Typer, import_app: typer.Typer) -> None:
    dataset_app = typer.Typer(help="Self-contained datasets: Parquet + manifest (+ crops), to share and train from.",
                              no_args_is_help=True)
    dataset_app.command("export")(export)
    dataset_app.command("import")(import_)
    app.add_typer(dataset_app, name="dataset")
    import_app.command("posetrack")(posetrack)
    import_app.command("penn-action")(penn_action)
    import_app.command("tfrecord")(tfrecord)
