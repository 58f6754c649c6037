"""``hmmr predict``: a trained checkpoint on a new video or image (the Prefect flow 'predict').

(No ``from __future__ import annotations`` here: typer evaluates the ``--home`` option type, which
is passed in by :func:`register`.)"""

from pathlib import Path
from typing import Annotated, Optional

import typer


def register(app: typer.Typer, home_opt) -> None:
    """Add ``predict`` to ``app``; ``home_opt`` is the CLI's shared ``--home`` option type."""

    @app.command()
    def predict(
        source: Annotated[str, typer.Argument(help="A video: URL (anything yt-dlp opens) or file; or an image file (.jpg, .png ...).")],
        checkpoint: Annotated[Path, typer.Option(help="A checkpoint written by hmmr train (RUN_DIR/last.pt).", exists=True, dir_okay=False)],
        out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder. Default HOME/predictions/<video id>/.")] = None,
        render: Annotated[bool, typer.Option(help="Also write overlay.mp4 (the meshes over the video).")] = True,
        smpl: Annotated[Optional[Path], typer.Option(help="The SMPL file the checkpoint was trained with; default HMMR_SMPL_PATH, else the open body model.")] = None,
        device: Annotated[str, typer.Option(help="auto (cuda when available), cpu or cuda[:N].")] = "auto",
        fps: Annotated[Optional[float], typer.Option(help="Harvest the video at this frame rate instead of its own.")] = None,
        max_height: Annotated[int, typer.Option(help="Download the best format no taller than this (pixels).")] = 720,
        progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
        home: home_opt = None,
    ) -> None:
        """Predict 3D people with a trained HMMR checkpoint.

        A video is harvested first (download, 2D pose, tracks, curation: it lands in the lakehouse like any
        harvest), then every kept track is predicted with the paper's sliding windows: pose, shape, cameras
        (crop and original image), 3D joints and the mesh per frame, written to predictions.parquet and
        predictions.npz (format: model/prediction_files.py), and overlay.mp4 with each track's mesh in its
        colour. An image gives each person's past (t-5), present and future (t+5) from the hallucinator,
        as a PNG of three panels per person.
        """
        from flows.predict import predict as predict_flow
        from hmmr.cli import console
        from hmmr.cli_common import settings_for

        state = predict_flow(source=source, checkpoint=str(checkpoint), home=str(settings_for(home).home.resolve()),
                             out=str(out) if out else None, smpl=str(smpl) if smpl else None, device=device,
                             render=render, fps=fps, max_height=max_height, progress=progress, return_state=True)
        if state.is_failed():
            typer.echo(f"error: {state.message}", err=True)
            raise typer.Exit(1)
        result = state.result()
        what = (f"{len(result['tracks'])} tracks, {result['frames']} frames of {result['video_id']}" if result["kind"] == "video"
                else f"{result['people']} people")
        console.print(f"predicted {what}\n" + "\n".join(f"{name}: {path}" for name, path in result["files"].items()))
