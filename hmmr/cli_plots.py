"""``hmmr plot``: PNG plots of the harvested data and of a track (matplotlib, off-screen).

(No ``from __future__ import annotations`` here: typer evaluates the ``--home`` option type, which
is passed in by :func:`register`.)"""

from pathlib import Path
from typing import Annotated, Optional

import typer

plot_app = typer.Typer(help="PNG plots: the whole dataset (tracks per tag, track lengths, keypoint visibility) or one track.",
                       no_args_is_help=True)


def track_plot(settings, video_id: str, track_id: int, motion=None):
    """The figure of one track: its keypoint confidences over time and, given its ``motion`` (a
    :class:`model.predict.TrackMotion` of ``hmmr predict``), its predicted 3D joints' acceleration below."""
    import numpy as np

    from hmmr.figures import new_figure
    from model.plots import acceleration_curves, acceleration_figure
    from pose_harvest.keypoints import HMMR25_TO_LSP14
    from warehouse.plots import track_confidence_data, track_confidence_figure

    frames, conf = track_confidence_data(settings, video_id, track_id)
    fig = new_figure(9.0, 8.0 if motion is not None else 5.0)
    panels = fig.subfigures(2, 1, height_ratios=[3, 2]) if motion is not None else [fig]
    track_confidence_figure(frames, conf, f"{video_id} track {track_id}: keypoint confidence", fig=panels[0])
    if motion is not None:
        curves = acceleration_curves(motion.kps3d[:, HMMR25_TO_LSP14].astype(np.float64))
        acceleration_figure(curves, "Predicted 3D joints (LSP-14): acceleration", start_frame=int(motion.frames[0]), fig=panels[1])
    return fig


def register(app: typer.Typer, home_opt) -> None:
    """Add ``hmmr plot`` to ``app``; ``home_opt`` is the CLI's shared ``--home`` option type."""
    app.add_typer(plot_app, name="plot")

    @plot_app.command("dataset")
    def dataset(
        out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder for the PNG files. Default HOME/plots/dataset/.")] = None,
        home: home_opt = None,
    ) -> None:
        """Plot the whole lakehouse: kept tracks per tag, the track-length histogram (kept and dropped),
        the share of detections in which each keypoint is visible."""
        from hmmr.cli import console
        from hmmr.cli_common import settings_for
        from warehouse.plots import write_dataset_plots

        settings = settings_for(home)
        try:
            written = write_dataset_plots(settings, out or settings.home / "plots" / "dataset")
        except FileNotFoundError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from exc
        if not written:
            console.print(f"[red]no kept track in the lakehouse at {settings.home} yet: nothing to plot (hmmr harvest SOURCES first)[/red]")
            raise typer.Exit(1)
        for path in written.values():
            console.print(f"wrote {path}")

    @plot_app.command("track")
    def track(
        video_id: Annotated[str, typer.Argument(help="The track's video (videos.video_id).")],
        track_id: Annotated[int, typer.Argument(help="The track (tracks.track_id).")],
        out: Annotated[Optional[Path], typer.Option("--out", "-o", help="PNG to write. Default HOME/plots/<video>_track_<id>.png.")] = None,
        predictions: Annotated[Optional[Path], typer.Option("--predictions", "-p", help="hmmr predict's folder or .npz for this video: adds the predicted 3D joints' acceleration. Default HOME/predictions/<video>/ when it exists.")] = None,
        home: home_opt = None,
    ) -> None:
        """Plot one track: each keypoint's confidence over its frames (a heat map; blank where the person
        was not detected) and, with predictions, the acceleration of its predicted 3D joints."""
        from hmmr.cli import console
        from hmmr.cli_common import settings_for
        from hmmr.figures import save_png
        from model.prediction_files import NPZ, folder_name, read_predictions

        settings = settings_for(home)
        if predictions is None and (settings.home / "predictions" / folder_name(video_id) / NPZ).is_file():
            predictions = settings.home / "predictions" / folder_name(video_id)
        try:
            motion = read_predictions(predictions).tracks.get(track_id) if predictions else None
            fig = track_plot(settings, video_id, track_id, motion)
        except (OSError, LookupError, ValueError) as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from exc
        path = save_png(fig, out or settings.home / "plots" / f"{folder_name(video_id)}_track_{track_id}.png")
        note = "" if not predictions else f" with its predicted motion from {predictions}" if motion is not None \
            else f" (no track {track_id} in {predictions}: keypoint confidence only)"
        console.print(f"wrote {path}{note}")
