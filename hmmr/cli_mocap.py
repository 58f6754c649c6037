"""``hmmr import bvh|3dpw|h36m``: 3D motion capture into the ``mocap_sequences`` / ``mocap_frames`` tables."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hmmr.cli_common import HomeOpt, settings_for
from hmmr.cli_dataset import console

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
    _run(files, lambda progress: import_bvh(files, settings_for(home), fps=fps, scale=unit, test_subjects=test_subjects,
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
    _run(files, lambda progress: import_3dpw(files, settings_for(home), progress=progress))


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
    _run(found, lambda progress: import_h36m(paths, settings_for(home), fps=fps, source_fps=source_fps,
                                             test_subjects=test_subjects, progress=progress))


SequencesArg = Annotated[Optional[list[str]], typer.Argument(help="Sequence ids (e.g. cmu:02_01); default: every stored one.")]


def fit(
    sequences: SequencesArg = None,
    iterations: Annotated[int, typer.Option(min=1, help="Adam iterations on all joints (after the torso stage).")] = 240,
    smpl: Annotated[Optional[Path], typer.Option(help="SMPL model file (.pkl or converted .npz); default HMMR_SMPL_PATH, else the open body model.")] = None,
    home: HomeOpt = None,
) -> None:
    """Fit the body model to stored mocap sequences (hmmr import bvh first): per-frame pose and
    translation, one shape per sequence, all frames at once with temporal smoothness, CMU joints
    matched to SMPL joints with constant placement corrections (model.body.fit_joints). Writes
    mocap_fits and mocap_fit_frames; fitting again replaces a sequence's rows."""
    from flows.mocap import fit_sequences
    from model.body.fit_joints import FitConfig, MocapSkeletonError

    table = Table("sequence", "split", "frames", "mean mm", "max mm", "without corrections mm", "worst joint", "iterations", "seconds",
                  title="body-model fits (distance between mocap joints and fitted body joints)")
    try:  # one line per sequence as it is stored
        done = fit_sequences(settings_for(home), sequences, smpl=str(smpl) if smpl else None, cfg=FitConfig(iterations=iterations),
                             progress=lambda r: console.print(f"fitted {r.sequence_id}: {r.mean_error_mm:.1f} mm mean, {r.seconds:.1f} s"))
    except (KeyError, MocapSkeletonError, FileNotFoundError) as exc:
        console.print(f"[red]not fitted:[/red] {str(exc).strip(chr(39))}")
        raise typer.Exit(1) from exc
    for r in done:
        worst = max(r.per_joint_mm, key=r.per_joint_mm.get)
        table.add_row(r.sequence_id, r.split or "", str(r.n_frames), f"{r.mean_error_mm:.1f}", f"{r.max_error_mm:.1f}",
                      f"{r.raw_mean_error_mm:.1f}", f"{worst} {r.per_joint_mm[worst]:.1f}", str(r.iterations), f"{r.seconds:.1f}")
    console.print(table)


def views(
    sequences: SequencesArg = None,
    count: Annotated[int, typer.Option("--views", min=1, help="Views (random cameras) per sequence.")] = 4,
    seed: Annotated[int, typer.Option(help="Seed of the cameras and the noise (a view is the same for the same seed).")] = 0,
    home: HomeOpt = None,
) -> None:
    """Film every fitted sequence (hmmr mocap fit first) with random plausible cameras (3-10 m away,
    0.5-2.5 m high, any direction, 45-75 degree field of view, 1280x720) and detector-like errors
    measured on real MediaPipe tracks; store each view as a video 'mocap:<sequence>:view<k>' curated like a
    harvest (so training_windows has its windows) with its 3D ground truth in track_frames_3d and the
    sequence's split in the video's tags."""
    from pose_harvest.detector_noise import MEDIAPIPE_NOISE, measure_noise
    from warehouse.mocap.fits import read_fits
    from warehouse.mocap.views import harvested_tracks, store_views

    settings = settings_for(home)
    try:
        fits = read_fits(settings, sequences)
    except (KeyError, FileNotFoundError) as exc:
        console.print(f"[red]no views:[/red] {str(exc).strip(chr(39))}")
        raise typer.Exit(1) from exc
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("filming", total=len(fits) * count)
        stored = store_views(settings, fits, MEDIAPIPE_NOISE, views=count, seed=seed,
                             progress=lambda v: bar.update(task, advance=1, description=v.video_id))
    table = Table("video", "split", "frames", "kept tracks", "kept frames", "frames detected", title="synthetic views")
    for v in stored:
        table.add_row(v.video_id, v.split or "", str(v.n_frames), str(v.n_tracks_kept), str(v.kept_frames), f"{v.detected_fraction:.3f}")
    console.print(table)
    ids = ", ".join(f"'{v.video_id}'" for v in stored)
    synthetic = measure_noise(harvested_tracks(settings, f"SELECT video_id, track_id FROM curated_tracks WHERE video_id IN ({ids})",
                                               synthetic=True), "synthetic")
    console.print(f"people touching the image border: {synthetic.edge_fraction:.2%} of frames "
                  f"(measured on the real tracks: {MEDIAPIPE_NOISE.edge_fraction:.2%})")


def noise(home: HomeOpt = None) -> None:
    """Measure a detector's errors on the kept tracks of a harvest (HOME): per-keypoint jitter,
    outliers, missing rate and confidence, dropped frames, border contact; prints them and the Python
    literal that pose_harvest/detector_noise.py holds as MEDIAPIPE_NOISE."""
    from pose_harvest.detector_noise import measure_noise
    from pose_harvest.keypoints import HMMR25
    from warehouse.catalog import read_only_query
    from warehouse.mocap.views import harvested_tracks

    settings = settings_for(home)
    try:
        tracks = harvested_tracks(settings)
        detectors = read_only_query(settings, "SELECT DISTINCT detector FROM videos WHERE status = 'ok' AND video_id NOT LIKE 'mocap:%'")
    except FileNotFoundError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    if not tracks:
        console.print(f"[red]no kept harvested tracks in {settings.home}: run hmmr harvest first[/red]")
        raise typer.Exit(1)
    measured = measure_noise(tracks, "+".join(sorted(detectors.column("detector").to_pylist())))
    table = Table("keypoint", "jitter (x height)", "missing", "confidence", title=f"{measured.n_tracks} tracks, {measured.n_frames} frames")
    for j, name in enumerate(HMMR25.joints):
        table.add_row(name, f"{measured.jitter[j]:.4f}", f"{measured.missing[j]:.3f}", f"{measured.conf_mean[j]:.3f} +- {measured.conf_std[j]:.3f}")
    console.print(table)
    console.print(f"correlation {measured.correlation_s * 1000:.1f} ms, outliers {measured.outlier_rate:.2%} (RMS {measured.outlier_scale:.3f} x height), "
                  f"frames without detection {measured.frame_dropout:.2%}, at the border {measured.edge_fraction:.2%}")
    console.print(measured.literal("MEDIAPIPE_NOISE"), soft_wrap=True, highlight=False)


def register(import_app: typer.Typer, app: typer.Typer | None = None) -> None:
    """The import commands on ``import_app``; with ``app``, also the ``hmmr mocap`` group."""
    import_app.command("bvh")(bvh)
    import_app.command("3dpw")(pw3d)
    import_app.command("h36m")(h36m)
    if app is not None:
        mocap_app = typer.Typer(help="Mocap as 3D training data: fit the body model to imported sequences, film the fits "
                                     "with synthetic cameras, measure a detector's noise.", no_args_is_help=True)
        mocap_app.command("fit")(fit)
        mocap_app.command("views")(views)
        mocap_app.command("noise")(noise)
        app.add_typer(mocap_app, name="mocap")
