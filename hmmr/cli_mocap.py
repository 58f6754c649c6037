"""``hmmr import bvh|3dpw|h36m``: 3D motion capture into the ``mocap_sequences`` / ``mocap_frames`` tables."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hmmr.cli_dataset import HomeOpt, _settings, console

FpsOpt = Annotated[float, typer.Option("--fps", min=1.0, help="Frame rate to store (frames are resampled: slerp for rotations, linear for positions).")]
TestSubjectsOpt = Annotated[Optional[list[str]], typer.Option(
    "--test-subjects", help="Subjects to hold out (repeat the option); every other subject of the source becomes "
                            "train, stored sequences included. Default: each new subject by a hash of its id "
                            "(about 25 %, at least one; Human3.6M: S9 and S11), stored subjects keep their side.")]


def _scale(value: str | None) -> float | str | None:
    from warehouse.importers.bvh import UNITS

    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        if value.lower() not in UNITS:
            raise typer.BadParameter(f"{value!r}: give metres per file unit (e.g. 0.056444) or one of {', '.join(UNITS)}") from None
        return value.lower()
    if number <= 0:
        raise typer.BadParameter(f"{value}: the scale must be positive")
    return number


def _run(files: list[Path], run: Callable) -> None:
    """Run an import over ``files`` with a progress bar, then print a summary and the skipped files;
    exit 1 when a file was skipped or none was found."""
    if not files:
        console.print("[red]no files to import[/red]")
        raise typer.Exit(1)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("importing", total=len(files))
        result = run(progress=lambda f: bar.update(task, advance=1, description=getattr(f, "name", str(f))))
    table = Table("sequence", "subject", "split", "frames in", "fps in", "frames out", "fps out", title="stored")
    for s in result.sequences:
        table.add_row(s.sequence_id, s.subject or "", s.split or "", str(s.source_frames), f"{s.source_fps:g}",
                      str(s.n_frames), f"{s.fps:g}")
    if result.sequences:
        console.print(table)
    if result.resplit:
        console.print(f"moved {result.resplit} stored sequences to the other side of the split")
    for error in result.errors:
        console.print(f"[red]skipped:[/red] {error}", soft_wrap=True)
    console.print(f"{len(result.sequences)} sequences stored, {len(result.errors)} skipped")
    if result.errors:
        raise typer.Exit(1)


def bvh(
    paths: Annotated[list[Path], typer.Argument(exists=True, help="BVH files, or folders searched recursively for *.bvh.")],
    fps: FpsOpt = 30.0,
    scale: Annotated[Optional[str], typer.Option(help="Metres per file unit, or a unit: cmu (0.056444), m, cm, mm, inch. "
                                                     "Default: cmu for a CMU skeleton, else told from the skeleton's height.")] = None,
    test_subjects: TestSubjectsOpt = None,
    home: HomeOpt = None,
) -> None:
    """Import BVH motion (e.g. the CMU motion capture database): 3D joints in metres, y-up, per frame.

    Any frame rate and channel order; a CMU MotionBuilder-friendly file's leading T-pose frame is
    dropped. A CMU file named SS_TT.bvh becomes sequence cmu:SS_TT of subject SS. Importing a file
    again replaces its rows. A file that cannot be read is reported and skipped (exit code 1).
    """
    from warehouse.importers.bvh import bvh_files, import_bvh

    files, unit = bvh_files(paths), _scale(scale)
    _run(files, lambda progress: import_bvh(files, _settings(home), fps=fps, scale=unit, test_subjects=test_subjects,
                                            progress=progress))


def pw3d(
    paths: Annotated[list[Path], typer.Argument(exists=True, help="The 3DPW folder (or sequenceFiles, a split folder, or .pkl files).")],
    home: HomeOpt = None,
) -> None:
    """Import 3DPW sequence files (sequenceFiles/{train,validation,test}/*.pkl): one sequence per person,
    SMPL pose/shape/translation, 24 SMPL joints, camera poses, at 3DPW's 30 fps; 3DPW's split is kept.

    A file that is not a 3DPW sequence file is reported and skipped (exit code 1).
    """
    from warehouse.importers.pw3d import import_3dpw, sequence_files

    files = sequence_files(paths)
    _run(files, lambda progress: import_3dpw(files, _settings(home), progress=progress))


def h36m(
    paths: Annotated[list[Path], typer.Argument(exists=True, help="The Human3.6M folder (S1, S5, ...), or .cdf / MoSh .pkl / .npz files.")],
    fps: FpsOpt = 30.0,
    source_fps: Annotated[float, typer.Option(min=1.0, help="Frame rate of MoSh files that do not store one (mocap_framerate).")] = 50.0,
    test_subjects: TestSubjectsOpt = None,
    home: HomeOpt = None,
) -> None:
    """Import Human3.6M joint positions (S*/MyPoseFeatures/D3_Positions/*.cdf: 32 joints, mm, z-up, 50 fps)
    and MoSh SMPL fits (S*/<action>.pkl or .npz), paired by subject and action; joints stored in metres, y-up.

    A file that is neither is reported and skipped (exit code 1).
    """
    from warehouse.importers.h36m import import_h36m, takes

    found = takes(paths)
    _run(found, lambda progress: import_h36m(paths, _settings(home), fps=fps, source_fps=source_fps,
                                             test_subjects=test_subjects, progress=progress))


def register(import_app: typer.Typer) -> None:
    import_app.command("bvh")(bvh)
    import_app.command("3dpw")(pw3d)
    import_app.command("h36m")(h36m)
